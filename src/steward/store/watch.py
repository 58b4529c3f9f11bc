"""What other processes committed: the journal's listeners hear this process's commits;
a server following runs (Server-Sent Events) that other replicas drive also looks at
the events table itself, for rows past the last one it saw."""

from __future__ import annotations

from sqlalchemy import select

from steward.store.database import Database
from steward.store.schema import chain_head, events


def last_event_id(db: Database) -> int:
    with db.reader.connect() as connection:
        found = connection.execute(select(chain_head.c.last_id).where(chain_head.c.id == 1))
        return int(found.scalar_one())


def runs_changed_after(db: Database, after_id: int, limit: int = 5000) -> tuple[int, set[str]]:
    """(the last event id read, the runs with an event after `after_id`)."""
    query = (
        select(events.c.id, events.c.run_id)
        .where(events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    with db.reader.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return after_id, set()
    return int(rows[-1].id), {row.run_id for row in rows if row.run_id is not None}
