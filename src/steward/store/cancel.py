"""Cancelling a run in the store: one transaction marks its pending approvals cancelled
(so nobody can decide them any more) and appends its `run.finished` (cancelled) to the
chain, so the `runs` and `approvals` projections and the audit trail change together."""

from __future__ import annotations

import time

from sqlalchemy import select

from steward.core.errors import ConflictError, NotFoundError
from steward.core.events import RunFinished, RunStatus
from steward.store.approvals import set_approval_status
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.runs import RunRow, get_run
from steward.store.schema import approvals, runs

CANCELLED_CODE = "run.cancelled"


def cancellation(db: Database, run_id: str) -> str | None:
    """Why the run was cancelled, if it was; None otherwise (or when it is not on record)."""
    query = select(runs.c.status, runs.c.reason).where(runs.c.id == run_id)
    with db.reader.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.status != RunStatus.CANCELLED.value:
        return None
    return str(row.reason)


def cancel_run_record(
    db: Database,
    run_id: str,
    *,
    by: str,
    reason: str,
    steps: int = 0,
    now: float | None = None,
    on_commit: Published | None = None,
) -> RunRow:
    """Finish a run as cancelled. Raises NotFoundError for an unknown run, ConflictError
    for a finished one. `on_commit` receives the committed events (a journal's `publish`)."""
    moment = time.time() if now is None else now
    with db.writer.begin() as connection:
        row = connection.execute(
            select(runs.c.status).where(runs.c.id == run_id).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        if RunStatus(row.status).terminal:
            raise ConflictError(f"run {run_id} already {row.status}")
        waiting = connection.execute(
            select(approvals)
            .where(approvals.c.run_id == run_id, approvals.c.status == "pending")
            .order_by(approvals.c.requested_at)
            .with_for_update()
        ).all()
        why = f"the run was cancelled: {reason}"
        committed = [
            set_approval_status(connection, item, "cancelled", by, why, None, moment)
            for item in waiting
        ]
        event = RunFinished(
            RunStatus.CANCELLED,
            reason_code=CANCELLED_CODE,
            reason=f"cancelled by {by}: {reason}",
            steps=steps,
        )
        finished = append_event(connection, run_id, event, moment)
        committed.append(finished)
    if on_commit is not None:
        on_commit(committed)
    return get_run(db, run_id)
