"""Querying the audit chain: events by run, type and time, in id order, paged by id."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from steward.core.times import rfc3339
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

    @property
    def actor(self) -> str:
        """Who acted, when the event says: the person or key that decided, judged or
        changed something (`by`), or who started the run; "" for the run's own steps."""
        return actor_of(self.data)


def actor_of(data: dict[str, Any]) -> str:
    by = data.get("by")
    if isinstance(by, str) and by:
        return by
    tags = data.get("tags")
    if isinstance(tags, dict):
        return str(tags.get("started_by", ""))
    return ""


def _filtered(
    query: Select[Any],
    run_id: str | None,
    type_prefix: str | None,
    since: float | None,
    until: float | None,
) -> Select[Any]:
    """The audit filters, one place for the page, the API and the export: a run, a type
    or type prefix ("approval." matches every approval event), a time range [since, until)."""
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    if type_prefix:
        query = query.where(events.c.type.startswith(type_prefix, autoescape=True))
    if since is not None:
        query = query.where(events.c.ts >= since)
    if until is not None:
        query = query.where(events.c.ts < until)
    return query


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
    query = _filtered(query, run_id, type_prefix, since, until)
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
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first: events with ids below `before_id` (the last id of the previous page),
    filtered like `query_events`."""
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(events.c.id < before_id)
    if since is not None:
        query = query.where(events.c.ts >= since)
    if until is not None:
        query = query.where(events.c.ts < until)
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    if type_prefix:
        query = query.where(events.c.type.startswith(type_prefix, autoescape=True))
    with db.reader.connect() as connection:
        return [
            AuditEntry(r.id, r.run_id, r.type, r.ts, r.hash, r.prev_hash, json.loads(r.data))
            for r in connection.execute(query)
        ]


EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("id", "run_id", "type", "ts", "ts_unix", "actor", "event", "prev_hash", "hash")


def export_lines(
    db: Database,
    fmt: str = "jsonl",
    *,
    run_id: str | None = None,
    type_prefix: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> Iterator[str]:
    """The audit trail (or the filtered part of it) with its hashes, in chain order, one
    event per line, streamed from the database. JSONL: {"id", "run_id", "type", "ts" (RFC
    3339), "ts_unix" (the exact stored seconds the hash covers), "event", "prev_hash",
    "hash"}; the event is the stored text, byte for byte. CSV: a header, then those
    columns and the actor."""
    query = _filtered(select(events).order_by(events.c.id), run_id, type_prefix, since, until)
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    with db.reader.connect() as connection:
        for row in connection.execution_options(stream_results=True, yield_per=1000).execute(query):
            if fmt == "csv":
                yield _csv_line((row.id, row.run_id or "", row.type, rfc3339(row.ts), repr(row.ts),
                                 actor_of(json.loads(row.data)), row.data, row.prev_hash,
                                 row.hash))  # fmt: skip
            else:
                yield (
                    f'{{"id":{row.id},"run_id":{json.dumps(row.run_id)},"type":{json.dumps(row.type)},'
                    f'"ts":"{rfc3339(row.ts)}","ts_unix":{row.ts!r},"event":{row.data},'
                    f'"prev_hash":"{row.prev_hash}","hash":"{row.hash}"}}\n'
                )


def _csv_line(values: tuple[Any, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()
