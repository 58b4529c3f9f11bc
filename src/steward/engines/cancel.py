"""Cancel a run that is not executing in this process: one waiting for a person, queued,
or left `running` by a process that died.

The run's pending approvals become `cancelled` (deciding one later is a conflict) and
the run finishes `cancelled` with reason code `run.cancelled`, in one transaction that
also extends the audit chain. Resuming a cancelled run returns that result and does
nothing. A run executing in this process is cancelled by cancelling its task: the
runner records the same finish (Runner._drive). A run still executing in another
process notices at its next step and stops there (Runner._loop).
"""

from __future__ import annotations

from steward.runtime.history import RunHistory
from steward.store.cancel import cancel_run_record
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import RunRow, read_journal


def cancel_run(db: Database, journal: Journal, run_id: str, *, by: str, reason: str) -> RunRow:
    """Finish the run as cancelled and return its row. Raises NotFoundError for an
    unknown run and ConflictError for a finished one ("run X already succeeded")."""
    history = RunHistory()
    for entry in read_journal(db, run_id):
        history.apply(entry.event)
    steps = max(history.models, default=-1) + 1  # model turns taken so far
    return cancel_run_record(
        db, run_id, by=by, reason=reason, steps=steps, on_commit=journal.publish
    )
