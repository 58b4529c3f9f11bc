"""Querying the audit chain: events by run, type and time, in id order, paged by id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from steward.store.database import Database
from steward.store.schema import events


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    run_id: str | None
    type: str
    ts: float
    hash: str
    prev_hash: str
    data: dict[str, Any]


def query_events(
    db: Database,
    *,
    run_id: str | None = None,
    type_prefix: str | None = None,
    since: float | None = None,
    until: float | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """Events in chain order after `after_id`. `type_prefix` "approval." matches every
    approval event; an exact type matches itself."""
    query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    if type_prefix:
        query = query.where(events.c.type.startswith(type_prefix, autoescape=True))
    if since is not None:
        query = query.where(events.c.ts >= since)
    if until is not None:
        query = query.where(events.c.ts < until)
    with db.reader.connect() as connection:
        return [
            AuditEntry(r.id, r.run_id, r.type, r.ts, r.hash, r.prev_hash, json.loads(r.data))
            for r in connection.execute(query)
        ]


def recent_events(
    db: Database,
    *,
    run_id: str | None = None,
    type_prefix: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first: events with ids below `before_id` (the last id of the previous page),
    filtered like `query_events`."""
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(events.c.id < before_id)
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    if type_prefix:
        query = query.where(events.c.type.startswith(type_prefix, autoescape=True))
    with db.reader.connect() as connection:
        return [
            AuditEntry(r.id, r.run_id, r.type, r.ts, r.hash, r.prev_hash, json.loads(r.data))
            for r in connection.execute(query)
        ]
