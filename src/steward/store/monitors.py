"""Drift monitors' saved state (tables monitor_state and monitor_cursor) and the journal
rows a monitor folds, read in id order. The state itself is opaque JSON here: monitor/
gives it meaning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from steward.core.events import Event, decode_event
from steward.store.chain import PendingEvent, append_event
from steward.store.database import Database
from steward.store.runs import JournalEntry
from steward.store.schema import events, monitor_cursor, monitor_state


@dataclass(frozen=True, slots=True)
class MonitorRow:
    agent: str
    version: str
    metric: str
    state: dict[str, Any]
    previous_version: str
    first_seen: float
    through_ts: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Row:
    """One journal row: its id, run and time; the event only when its type was wanted."""

    id: int
    run_id: str | None
    ts: float
    event: Event | None


def load_monitor_rows(db: Database, agent: str | None = None) -> list[MonitorRow]:
    """Saved series (of one agent, or all), oldest version first."""
    query = select(monitor_state).order_by(
        monitor_state.c.agent, monitor_state.c.first_seen, monitor_state.c.metric
    )
    if agent is not None:
        query = query.where(monitor_state.c.agent == agent)
    with db.reader.connect() as connection:
        rows = connection.execute(query).all()
    return [
        MonitorRow(
            r.agent,
            r.version,
            r.metric,
            json.loads(r.state),
            r.previous_version,
            r.first_seen,
            r.through_ts,
            r.updated_at,
        )
        for r in rows
    ]


def load_cursor(db: Database, name: str) -> int | None:
    """The id of the last journal event monitor `name` folded (None: it never saved)."""
    with db.reader.connect() as connection:
        found = connection.execute(
            select(monitor_cursor.c.event_id).where(monitor_cursor.c.name == name)
        ).scalar_one_or_none()
    return None if found is None else int(found)


def save_monitor_rows(db: Database, name: str, rows: Sequence[MonitorRow], cursor: int) -> None:
    """Replace the saved state of these series and move the cursor, in one transaction:
    the saved charts are always exactly those of the events up to the cursor."""
    with db.writer.begin() as connection:
        write_monitor_rows(connection, name, rows, cursor)


def save_alarms(
    db: Database,
    name: str,
    rows: Sequence[MonitorRow],
    cursor: int,
    alarms: Sequence[Event],
    ts: float,
) -> list[PendingEvent]:
    """Journal alarms and save the series and cursor in one transaction: after a crash
    either all are on record or none (and folding again from the cursor raises the alarms
    again), never an alarm twice. Returns the events, for the caller to publish."""
    with db.writer.begin() as connection:
        pending = [append_event(connection, None, event, ts) for event in alarms]
        write_monitor_rows(connection, name, rows, cursor)
    return pending


def write_monitor_rows(
    connection: Connection, name: str, rows: Sequence[MonitorRow], cursor: int
) -> None:
    c = monitor_state.c
    for row in rows:
        connection.execute(
            delete(monitor_state).where(
                c.agent == row.agent, c.version == row.version, c.metric == row.metric
            )
        )
    if rows:
        connection.execute(
            insert(monitor_state),
            [
                {
                    "agent": r.agent,
                    "version": r.version,
                    "metric": r.metric,
                    "state": json.dumps(r.state, separators=(",", ":")),
                    "previous_version": r.previous_version,
                    "first_seen": r.first_seen,
                    "through_ts": r.through_ts,
                    "updated_at": r.updated_at,
                }
                for r in rows
            ],
        )
    connection.execute(delete(monitor_cursor).where(monitor_cursor.c.name == name))
    connection.execute(
        insert(monitor_cursor).values(name=name, event_id=cursor, updated_at=time.time())
    )


def head_event_id(db: Database) -> int:
    with db.reader.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def rows_after(db: Database, cursor: int, wanted: Collection[str], limit: int) -> list[Row]:
    """The next `limit` journal rows after id `cursor`, in id order (ids are assigned under
    the chain lock at commit: no row appears later below one already read). Only rows of
    the `wanted` types are decoded; the others still move a reader's cursor."""
    query = (
        select(events.c.id, events.c.run_id, events.c.ts, events.c.type, events.c.data)
        .where(events.c.id > cursor)
        .order_by(events.c.id)
        .limit(limit)
    )
    with db.reader.connect() as connection:
        rows = connection.execute(query).all()
    return [
        Row(int(r.id), r.run_id, r.ts, decode_event(r.data) if r.type in wanted else None)
        for r in rows
    ]


def recent_alarm_events(db: Database, agent: str, limit: int = 50) -> list[JournalEntry]:
    """The latest `monitor.alarm` events of `agent`, newest first (at most `limit`;
    alarms are rare, so the last 2000 of all agents are looked through)."""
    query = (
        select(events.c.id, events.c.ts, events.c.type, events.c.data)
        .where(events.c.type == "monitor.alarm")
        .order_by(events.c.id.desc())
        .limit(2000)
    )
    found: list[JournalEntry] = []
    with db.reader.connect() as connection:
        for r in connection.execute(query):
            event = decode_event(r.data)
            if getattr(event, "agent", None) == agent:
                found.append(JournalEntry(r.id, r.ts, r.type, event))
                if len(found) >= limit:
                    break
    return found
