"""Feedback on a run's output: a person marks it correct or incorrect (with a correction).

Feedback is an event in the run's journal (so it is audited and chained like the rest);
accuracy is computed from the latest verdict per run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, Connection, FromClause, select

from steward.core.errors import ConflictError, NotFoundError, StewardError
from steward.core.events import FeedbackGiven
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.schema import events, runs

VERDICTS = ("correct", "incorrect")


def give_feedback(
    db: Database,
    run_id: str,
    *,
    verdict: str,
    by: str,
    correction: str = "",
    comment: str = "",
    on_commit: Published | None = None,
) -> FeedbackGiven:
    """Record a verdict on a finished run. An `incorrect` verdict needs a correction."""
    if verdict not in VERDICTS:
        raise StewardError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    if verdict == "incorrect" and not correction.strip():
        raise StewardError("an `incorrect` verdict needs a correction: what the output should be")
    moment = time.time()
    event = FeedbackGiven(verdict, by, correction, comment)
    with db.writer.begin() as connection:
        row = connection.execute(select(runs.c.status).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        if row.status in {"queued", "running", "waiting"}:
            raise ConflictError(f"run {run_id} is {row.status}: it has no output to judge yet")
        pending = append_event(connection, run_id, event, moment)
    if on_commit is not None:
        on_commit([pending])
    return event


def latest_verdicts(db: Database, run_ids: Iterable[str] | None = None) -> dict[str, str]:
    """The latest feedback verdict per run (all runs with feedback, or just `run_ids`)."""
    query = (
        select(events.c.run_id, events.c.data)
        .where(events.c.type == "run.feedback")
        .order_by(events.c.id)
    )
    wanted = None if run_ids is None else set(run_ids)
    found: dict[str, str] = {}
    with db.reader.connect() as connection:
        for run_id, data in connection.execute(query):
            if wanted is None or run_id in wanted:
                found[run_id] = json.loads(data)["verdict"]
    return found


def verdicts_of(
    connection: Connection, source: FromClause, where: Sequence[ColumnElement[bool]]
) -> dict[str, str]:
    """The latest verdict per run of the feedback events in `source` (events joined to
    what selects them) matching `where`; only feedback rows are read and decoded. No
    ORDER BY: SQLite would walk the whole journal in id order rather than sort a few rows;
    the latest is the highest id."""
    query = (
        select(events.c.id, events.c.run_id, events.c.data)
        .select_from(source)
        .where(events.c.type == "run.feedback", *where)
    )
    latest: dict[str, tuple[int, str]] = {}
    for event_id, run_id, data in connection.execute(query):
        if run_id not in latest or latest[run_id][0] < event_id:
            latest[run_id] = (event_id, json.loads(data)["verdict"])
    return {run_id: verdict for run_id, (_id, verdict) in latest.items()}


def accuracy(verdicts: dict[str, str], answered: int) -> float | None:
    """1 - (outputs flagged incorrect / outputs given): an answer counts as correct unless
    a person flagged it. None while nobody has given any feedback (unmeasured)."""
    if not verdicts or answered <= 0:
        return None
    flagged = sum(1 for v in verdicts.values() if v == "incorrect")
    return max(0.0, 1.0 - flagged / answered)
