"""The audit chain: each event row carries the SHA-256 of the row before it.

hash(n) = SHA-256(hash(n-1) | id | run_id | type | ts | data). Because the id is hashed,
an edit, a deletion or a reordering of rows anywhere breaks the chain at that row.
Deleting rows from the tail is caught by comparing the chain head (kept in `chain_head`
and printed by `steward audit head` for safekeeping outside the database).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from steward.store.projections import PROJECTED, project
from steward.store.schema import GENESIS_HASH, chain_head, events


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An encoded event waiting for its place in the chain."""

    run_id: str | None
    type: str
    ts: float
    data: bytes
    event: object  # the typed event, for projections


_COLUMNS = "id, run_id, type, ts, data, prev_hash, hash"
_INSERT = {
    "qmark": f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "format": f"INSERT INTO events ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
    "pyformat": f"INSERT INTO events ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
    "numeric": f"INSERT INTO events ({_COLUMNS}) VALUES (:1, :2, :3, :4, :5, :6, :7)",
}


def row_hash(
    prev_hash: str, row_id: int, run_id: str | None, type_: str, ts: float, data: str
) -> str:
    return hashlib.sha256(
        b"%s|%d|%s|%s|%r|%s"
        % (
            prev_hash.encode(),
            row_id,
            (run_id or "").encode(),
            type_.encode(),
            ts,
            data.encode("utf-8"),
        )
    ).hexdigest()


def append_in_transaction(connection: Connection, batch: Sequence[PendingEvent]) -> int:
    """Append a batch to the chain inside the caller's transaction; returns the last id.

    The chain head row is read FOR UPDATE (PostgreSQL) or under BEGIN IMMEDIATE (SQLite),
    so concurrent writers, in this process or another, serialise on it.
    """
    head = connection.execute(
        select(chain_head.c.last_id, chain_head.c.last_hash)
        .where(chain_head.c.id == 1)
        .with_for_update()
    ).one()
    last_id, last_hash = int(head.last_id), str(head.last_hash)
    rows: list[tuple[int, str | None, str, float, str, str, str]] = []
    sha256 = hashlib.sha256
    for item in batch:
        last_id += 1
        data = item.data.decode("utf-8")
        digest = sha256(
            b"%s|%d|%s|%s|%r|%s"
            % (
                last_hash.encode(),
                last_id,
                (item.run_id or "").encode(),
                item.type.encode(),
                item.ts,
                item.data,
            )
        ).hexdigest()
        rows.append((last_id, item.run_id, item.type, item.ts, data, last_hash, digest))
        last_hash = digest
    # The DBAPI's executemany directly: SQLAlchemy's per-row parameter processing costs
    # more than the insert itself at this volume, and these columns need no conversion.
    connection.exec_driver_sql(_INSERT[connection.dialect.paramstyle], rows)
    connection.execute(
        update(chain_head).where(chain_head.c.id == 1).values(last_id=last_id, last_hash=last_hash)
    )
    for item in batch:
        if item.type in PROJECTED:
            project(connection, item.run_id, item.ts, item.event)
    return last_id


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
        actual = row_hash(row.prev_hash, row.id, row.run_id, row.type, row.ts, row.data)
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
