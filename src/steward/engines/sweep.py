"""Expire approvals nobody decided in time, and resume every run no pending approval
holds back: the gate denies an expired approval (`approval.expired`) and the agent
answers without it; a run whose decided approval was never acted on (its resume was lost
to a crash) goes on as decided. Each run is driven holding its lease (store/leases.py):
one another process holds is left to it."""

from __future__ import annotations

import time

from steward.core.errors import ConflictError, StewardError
from steward.engines.catalog import agent_for_run
from steward.engines.embedded import EmbeddedEngine
from steward.orchestration.service import Delegator
from steward.runtime.agent import AgentRuntime
from steward.runtime.runner import Runner, RunResult
from steward.store.approvals import expire_approval, overdue_approvals
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.leases import RunLeases
from steward.store.recovery import resumable_runs


async def resume_expired(
    db: Database, journal: Journal, now: float | None = None
) -> list[RunResult | StewardError]:
    moment = time.time() if now is None else now
    runner = Runner(EmbeddedEngine(db, journal), delegation=Delegator(None, db))
    for row in overdue_approvals(db, moment):  # their runs' roots are resumed below
        expire_approval(db, row.id, moment, on_commit=journal.publish)
    results: list[RunResult | StewardError] = []
    # one agent per stored version, as a server keeps its loaded agents: rebuilding it
    # (YAML, policy, tools) for every run cost more than resuming the run
    built: dict[tuple[str, str], AgentRuntime] = {}
    leases = RunLeases(db)  # each run's, while this process drives it (store/leases.py)
    try:
        for run in resumable_runs(db, "unblocked", now=moment):
            try:
                async with leases.driving(run.id) as mine:
                    if not mine:
                        results.append(ConflictError(f"run {run.id} is driven by another process"))
                        continue
                    version = (run.agent, run.agent_version)
                    agent = built.get(version) or built.setdefault(
                        version, agent_for_run(db, run.id)
                    )
                    results.append(
                        await runner.resume(agent, run.id, "swept: no approval holds it back")
                    )
            except StewardError as exc:  # a run we cannot rebuild stays waiting
                results.append(exc)
    finally:
        leases.close()
    return results
