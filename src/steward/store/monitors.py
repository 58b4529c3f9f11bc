"""Drift monitors' saved state (table monitor_state), and the journal events a restarted
monitor folds to catch up. The state itself is opaque JSON here: monitor/ gives it meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from steward.core.events import Event, decode_event
from steward.store.chain import PendingEvent, append_event
from steward.store.database import Database
from steward.store.runs import JournalEntry
from steward.store.schema import events, monitor_state


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


def save_monitor_rows(db: Database, rows: Sequence[MonitorRow]) -> None:
    """Replace the saved state of these series, in one transaction."""
    if rows:
        with db.writer.begin() as connection:
            write_monitor_rows(connection, rows)


def save_alarm(db: Database, row: MonitorRow, event: Event, ts: float) -> PendingEvent:
    """Journal an alarm and save its series in one transaction: after a crash either both
    are on record or neither (and catching up raises the alarm again), never one twice.
    Returns the event, for the caller to publish to the journal's consumers."""
    with db.writer.begin() as connection:
        pending = append_event(connection, None, event, ts)
        write_monitor_rows(connection, [row])
    return pending


def write_monitor_rows(connection: Connection, rows: Sequence[MonitorRow]) -> None:
    c = monitor_state.c
    for row in rows:
        connection.execute(
            delete(monitor_state).where(
                c.agent == row.agent, c.version == row.version, c.metric == row.metric
            )
        )
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


def events_since(
    db: Database, after_ts: float, types: Iterable[str], limit: int
) -> tuple[list[tuple[str | None, JournalEntry]], bool]:
    """The last `limit` events of `types` committed after `after_ts`, in journal order
    (with their run ids), and whether older ones were left out to keep to `limit`."""
    query = (
        select(events.c.id, events.c.run_id, events.c.ts, events.c.type, events.c.data)
        .where(events.c.type.in_(list(types)), events.c.ts > after_ts)
        .order_by(events.c.id.desc())
        .limit(limit + 1)
    )
    with db.reader.connect() as connection:
        rows = connection.execute(query).all()
    truncated = len(rows) > limit
    found = [
        (r.run_id, JournalEntry(r.id, r.ts, r.type, decode_event(r.data)))
        for r in reversed(rows[:limit])
    ]
    return found, truncated


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
