"""Expire approvals nobody decided in time, and resume their runs so they finish: the
gate denies an expired approval (`approval.expired`) and the agent answers without it."""

from __future__ import annotations

import time

from steward.core.errors import StewardError
from steward.runtime.catalog import agent_for_run
from steward.runtime.runner import Runner, RunResult
from steward.store.approvals import expire_approval, overdue_approvals
from steward.store.database import Database
from steward.store.journal import Journal


async def resume_expired(
    db: Database, journal: Journal, now: float | None = None
) -> list[RunResult | StewardError]:
    moment = time.time() if now is None else now
    runner = Runner(db, journal)
    results: list[RunResult | StewardError] = []
    for row in overdue_approvals(db, moment):
        expire_approval(db, row.id, moment, on_commit=journal.publish)
        try:
            agent = agent_for_run(db, row.run_id)
            results.append(await runner.resume(agent, row.run_id, f"approval {row.id} expired"))
        except StewardError as exc:  # a run we cannot rebuild stays expired and waiting
            results.append(exc)
    return results
