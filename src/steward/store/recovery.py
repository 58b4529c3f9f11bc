"""Recovery is a reading of the store: which runs can make progress, and who drives each.

`resumable_runs` finds every root run whose journal says it can go on (a run a
delegation started is driven by its tree's root, steward/orchestration/): queued (waiting for a
slot), running (left by a process that stopped or died) and waiting with no approval
still pending (decided, expired or cancelled: the person has spoken, or the time ran out).
`claim_run` lets one process of several that found the same run drive it: the run's
RunStarted or RunResumed is appended only if its row is still as the claimant read it.
"""

from __future__ import annotations

import time
from typing import Literal

from sqlalchemy import and_, exists, or_, select

from steward.core.events import Event, RunStatus
from steward.store.chain import PendingEvent, Published, append_event
from steward.store.database import Database
from steward.store.runs import RunRow, run_row
from steward.store.schema import approvals, runs

# "all": queued, running and unblocked waiting runs (a server's start, when no other
# process drives runs of this database, or whose leases say which ones it drives:
# store/leases.py); "unblocked": only waiting runs none of whose approvals is still
# pending (the periodic sweep where leases are not shared: queued and running runs may
# belong to a process that is alive and driving them).
Scope = Literal["all", "unblocked"]


def resumable_runs(
    db: Database, scope: Scope = "all", *, now: float | None = None, limit: int = 10_000
) -> list[RunRow]:
    """Runs that can make progress, oldest first (queued runs start in arrival order)."""
    moment = time.time() if now is None else now
    # a run tree (delegation) is driven from its root: only roots are resumed, and a root
    # is held back by a pending approval anywhere in its tree
    member = runs.alias("member")
    pending = (
        select(approvals.c.id)
        .join(member, member.c.id == approvals.c.run_id)
        .where(
            or_(member.c.id == runs.c.id, member.c.root_run_id == runs.c.id),
            approvals.c.status == "pending",
            approvals.c.expires_at > moment,  # an overdue request expires on resume
        )
        .correlate(runs)
    )
    unblocked = and_(runs.c.status == RunStatus.WAITING.value, ~exists(pending))
    where = and_(
        runs.c.root_run_id.is_(None),
        unblocked
        if scope == "unblocked"
        else or_(runs.c.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]), unblocked),
    )
    query = select(runs).where(where).order_by(runs.c.created_at, runs.c.id).limit(limit)
    with db.reader.connect() as connection:
        return [run_row(r) for r in connection.execute(query)]


def claim_run(
    db: Database, seen: RunRow, event: Event, on_commit: Published | None = None
) -> PendingEvent | None:
    """Append `event` (the run's RunStarted or RunResumed) if the run's row is still as
    `seen` (same status, same updated_at, not finished); None when another process got
    there first. The row is read under the write lock, so of two claimants one wins;
    the event moves updated_at on, so a later claimant that read the old row loses."""
    moment = time.time()
    with db.writer.begin() as connection:
        row = connection.execute(
            select(runs.c.status, runs.c.updated_at, runs.c.finished_at)
            .where(runs.c.id == seen.id)
            .with_for_update()
        ).first()
        if (
            row is None
            or row.finished_at is not None
            or row.status != seen.status
            or row.updated_at != seen.updated_at
        ):
            return None
        committed = append_event(connection, seen.id, event, max(moment, seen.updated_at + 1e-6))
    if on_commit is not None:
        on_commit([committed])
    return committed
