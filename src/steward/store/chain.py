"""The audit chain: each event row carries the SHA-256 of the row before it.

hash(n) = SHA-256(hash(n-1), id, ts, run_id, type, data): see row_digest(). Because the id is hashed,
an edit, a deletion or a reordering of rows anywhere breaks the chain at that row.
Deleting rows from the tail is caught by comparing the chain head (kept in `chain_head`
and printed by `steward audit head` for safekeeping outside the database).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from steward.core.errors import StoreError
from steward.core.events import Event, encode_event, event_type
from steward.store.projections import PROJECTED, project
from steward.store.schema import GENESIS_HASH, chain_head, events


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An encoded event waiting for its place in the chain."""

    run_id: str | None
    type: str
    ts: float
    data: bytes
    event: Event  # the typed event, for projections


# The per-batch statements are plain SQL run through the DBAPI: building them with
# SQLAlchemy's expression language costs ~300 µs a commit, more than the commit itself.
_COLUMNS = "id, run_id, type, ts, data, prev_hash, hash"


_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_HEAD = {
    "sqlite": "SELECT last_id, last_hash FROM chain_head WHERE id = 1",
    "postgresql": "SELECT last_id, last_hash FROM chain_head WHERE id = 1 FOR UPDATE",
}
_ADVANCE = "UPDATE chain_head SET last_id = ?, last_hash = ? WHERE id = 1"


_ID_TS = struct.Struct("<qd").pack


def row_digest(
    prev_hash: str, row_id: int, run_id: str | None, type_: str, ts: float, data: bytes
) -> str:
    """SHA-256 over the previous hash and every column of the row. The id and timestamp
    are packed as fixed-width binary (exact for a double, and faster than formatting);
    NUL separates the text fields, which never contain it."""
    return hashlib.sha256(
        b"".join(
            (
                prev_hash.encode(),
                _ID_TS(row_id, ts),
                (run_id or "").encode(),
                b"\0",
                type_.encode(),
                b"\0",
                data,
            )
        )
    ).hexdigest()


class ChainTip(NamedTuple):
    """The last row a batch appended: its id and hash name that row and nothing else, so
    finding them tells whether the batch's transaction committed."""

    last_id: int
    last_hash: str


_LANDED = "SELECT 1 FROM events WHERE id = ? AND hash = ?"


def landed(cursor: Any, paramstyle: str, tip: ChainTip) -> bool:
    """Whether the transaction that would have ended the chain at `tip` committed."""
    cursor.execute(_sql(paramstyle, _LANDED), (tip.last_id, tip.last_hash))
    return cursor.fetchone() is not None


def chain_rows(
    head: ChainTip, batch: Sequence[PendingEvent]
) -> tuple[list[tuple[int, str | None, str, float, str, str, str]], ChainTip]:
    """The rows that append `batch` after `head`, hashed, and where they end the chain."""
    last_id, last_hash = head
    rows: list[tuple[int, str | None, str, float, str, str, str]] = []
    for item in batch:
        last_id += 1
        digest = row_digest(last_hash, last_id, item.run_id, item.type, item.ts, item.data)
        rows.append(
            (last_id, item.run_id, item.type, item.ts, item.data.decode("utf-8"), last_hash, digest)
        )
        last_hash = digest
    return rows, ChainTip(last_id, last_hash)


def projections(batch: Sequence[PendingEvent]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The statements (qmark style) that keep `runs` and `approvals` in step with a batch."""
    for item in batch:
        if item.run_id is not None and type(item.event) in PROJECTED:
            projected = project(item.run_id, item.event, item.ts)
            if projected is not None:
                # a handler may keep several tables in step with one event (a list)
                yield from projected if isinstance(projected, list) else [projected]


def append_rows(
    cursor: Any, dialect: str, paramstyle: str, batch: Sequence[PendingEvent]
) -> ChainTip:
    """Append a batch to the chain through a DBAPI cursor whose transaction is open;
    returns its tip. The chain head row is read FOR UPDATE (PostgreSQL) or under
    BEGIN IMMEDIATE (SQLite), so writers in this process or another serialise on it."""
    cursor.execute(_HEAD.get(dialect, _HEAD["postgresql"]))
    head = cursor.fetchone()
    rows, tip = chain_rows(ChainTip(int(head[0]), str(head[1])), batch)
    cursor.executemany(_sql(paramstyle, _INSERT), rows)
    cursor.execute(_sql(paramstyle, _ADVANCE), (tip.last_id, tip.last_hash))
    for statement, parameters in projections(batch):
        cursor.execute(_sql(paramstyle, statement), parameters)
    return tip


def append_in_transaction(connection: Connection, batch: Sequence[PendingEvent]) -> int:
    """The same, inside a SQLAlchemy transaction the caller holds."""
    cursor = connection.connection.cursor()  # the DBAPI connection, same transaction
    try:
        dialect = connection.dialect
        return append_rows(cursor, dialect.name, dialect.paramstyle, batch).last_id
    finally:
        cursor.close()


# Receives events once their transaction committed (a journal's `publish`, for consumers).
Published = Callable[[list[PendingEvent]], None]


def append_event(
    connection: Connection, run_id: str | None, event: Event, ts: float
) -> PendingEvent:
    """Append one event to the chain inside the caller's transaction (a decision, a
    state change: the row change and its audit event commit together). Returns it, for
    the caller to publish after the commit."""
    pending = PendingEvent(run_id, event_type(event), ts, encode_event(event), event)
    append_in_transaction(connection, [pending])
    return pending


def _sql(paramstyle: str, statement: str) -> str:
    if paramstyle == "qmark":
        return statement
    if paramstyle in ("format", "pyformat"):
        return statement.replace("?", "%s")
    raise StoreError(f"unsupported DBAPI paramstyle {paramstyle!r}")


@dataclass(frozen=True, slots=True)
class ChainProblem:
    event_id: int
    problem: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    head_hash: str
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(connection: Connection, batch_size: int = 5000) -> VerifyReport:
    """Walk every row in id order and recompute the chain; report every break."""
    problems: list[ChainProblem] = []
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    for row in _rows(connection, batch_size):
        checked += 1
        if row.id != expected_id:
            problems.append(
                ChainProblem(row.id, f"expected id {expected_id}: rows are missing or reordered")
            )
        if row.prev_hash != expected_prev:
            problems.append(
                ChainProblem(
                    row.id, "prev_hash does not match the previous row: a row was removed or moved"
                )
            )
        actual = row_digest(row.prev_hash, row.id, row.run_id, row.type, row.ts, row.data.encode())
        if actual != row.hash:
            problems.append(
                ChainProblem(row.id, "content does not match its hash: the row was edited")
            )
        expected_prev = row.hash
        expected_id = row.id + 1
    head = connection.execute(
        select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == 1)
    ).one()
    if int(head.last_id) != expected_id - 1 or head.last_hash != expected_prev:
        problems.append(
            ChainProblem(
                int(head.last_id),
                f"chain head says id {head.last_id} but the log ends at id {expected_id - 1}: "
                "rows were removed from the end",
            )
        )
    return VerifyReport(checked, expected_prev, tuple(problems))


def _rows(connection: Connection, batch_size: int) -> Iterator[Any]:
    last = 0
    while True:
        page = connection.execute(
            select(events).where(events.c.id > last).order_by(events.c.id).limit(batch_size)
        ).all()
        if not page:
            return
        yield from page
        last = int(page[-1].id)
