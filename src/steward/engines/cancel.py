"""Cancel a run that is not executing in this process: one waiting for a person, queued,
or left `running` by a process that died.

The run's pending approvals become `cancelled` (deciding one later is a conflict) and
the run finishes `cancelled` with reason code `run.cancelled`, in one transaction that
also extends the audit chain. Resuming a cancelled run returns that result and does
nothing. A run executing in this process is cancelled by cancelling its task: the
runner records the same finish (Runner._drive). A run still executing in another
process notices at its next step and stops there (Runner._loop).

A run tree (delegation) is cancelled whole from its root (`cancel_tree`): the runs below
it are driven inside the root's activations, so none of them can go on without it.
"""

from __future__ import annotations

import contextlib

from steward.core.errors import ConflictError
from steward.runtime.history import RunHistory
from steward.store.cancel import cancel_run_record
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import RunRow, read_journal, run_tree


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


def cancel_tree(
    db: Database, journal: Journal, root_run_id: str, *, by: str, reason: str
) -> RunRow:
    """Cancel the root's unfinished runs below it (deepest first: their pending approvals
    become `cancelled` too), then the root; returns the root's row. Raises NotFoundError
    for an unknown root and ConflictError when the root finished already."""
    tree = run_tree(db, root_run_id)
    for row in sorted(tree[1:], key=lambda r: -r.hop):
        if row.finished_at is None:
            with contextlib.suppress(ConflictError):  # it finished meanwhile
                cancel_run(db, journal, row.id, by=by, reason=f"{reason} (its tree was cancelled)")
    return cancel_run(db, journal, root_run_id, by=by, reason=reason)
