"""The journal heals from a transient store fault, and says when it can't: a lock held by
another connection (SQLite), the server killing its connection (PostgreSQL), a commit
whose acknowledgement was lost, a database file deleted under it, a permanent error."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from conftest import NamedPostgres
from steward.core.errors import StoreUnavailable
from steward.core.events import ToolSucceeded
from steward.store import Database, Journal
from steward.store.chain import PendingEvent, verify_chain
from steward.store.database import IDENTITY_CHECK_SECONDS
from steward.store.runs import read_journal
from steward.store.schema import events


def _succeeded(n: int) -> ToolSucceeded:
    return ToolSucceeded(
        key=f"r:0:c{n}", tool="lookup", result={"n": n}, latency_ms=1.0, attempts=1
    )


def _numbers(db: Database, run_id: str = "r1") -> list[int]:
    return [e.event.result["n"] for e in read_journal(db, run_id)]  # type: ignore[union-attr]


def _chain_ok(db: Database) -> bool:
    with db.reader.connect() as connection:
        return verify_chain(connection).ok


def hold_sqlite_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection takes the database's write lock (BEGIN EXCLUSIVE) and keeps it
    for `seconds`, as an operator's `sqlite3` shell or a backup tool would."""
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None, timeout=10)
        other.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10), "could not take the lock"
    return thread


async def test_a_lock_held_elsewhere_makes_it_unavailable_then_it_heals(
    sqlite_db: Database, tmp_path: Path
) -> None:
    journal = Journal(sqlite_db, lock_wait=0.2)
    try:
        journal.append("r1", _succeeded(0))
        await journal.flush()
        holder = hold_sqlite_lock(tmp_path / "steward.db", 2.0)
        for n in range(1, 6):
            journal.append("r1", _succeeded(n))
        with pytest.raises(StoreUnavailable, match="database is locked") as raised:
            await journal.flush(patience=0.8)  # a waiter is released, not kept forever
        assert raised.value.retry_after >= 1
        assert journal.health().unavailable
        for n in range(6, 10):  # appends keep queuing, in order, while it heals
            journal.append("r1", _succeeded(n))
        await journal.flush(patience=15)  # the lock ends; the journal heals by itself
        holder.join()
        assert _numbers(sqlite_db) == list(range(10))
        assert journal.health().ok
        assert journal.stats.retries >= 1
        assert _chain_ok(sqlite_db)
    finally:
        journal.close()


class _LostAcknowledgement(Journal):
    """The commit reaches the database, then the connection dies before we hear back."""

    lost = 0

    def __init__(self, db: Database) -> None:
        super().__init__(db, commit_here=False)  # the writer thread's own attempt

    def _write(self, connection: object, batch: list[PendingEvent]) -> None:  # type: ignore[override]
        super()._write(connection, batch)  # type: ignore[arg-type]
        if self.lost == 0:
            self.lost += 1
            raise sqlite3.OperationalError("disk I/O error")


async def test_a_commit_whose_acknowledgement_was_lost_is_not_written_twice(
    any_db: Database,
) -> None:
    journal = _LostAcknowledgement(any_db)
    try:
        for n in range(5):
            journal.append("r1", _succeeded(n))
        await journal.flush(patience=15)
        for n in range(5, 8):
            journal.append("r1", _succeeded(n))
        await journal.flush(patience=15)
    finally:
        journal.close()
    assert journal.lost == 1 and journal.stats.retries >= 1
    assert _numbers(any_db) == list(range(8))  # once each, in order
    assert _chain_ok(any_db)


async def test_a_permanent_error_fails_closed(any_db: Database) -> None:
    journal = Journal(any_db)
    with any_db.writer.begin() as connection:
        connection.execute(text("DROP TABLE events"))
    journal.append("r1", _succeeded(1))
    with pytest.raises(StoreUnavailable, match="journal stopped"):
        await journal.flush(patience=5)
    with pytest.raises(StoreUnavailable, match="journal stopped"):
        journal.append("r1", _succeeded(2))
    assert not journal.health().ok and "restart" in journal.health().reason
    journal.close()


async def test_a_deleted_database_file_is_never_acknowledged(
    sqlite_db: Database, tmp_path: Path
) -> None:
    journal = Journal(sqlite_db)
    try:
        journal.append("r1", _succeeded(0))
        await journal.flush()
        path = tmp_path / "steward.db"
        for leftover in (path, path.with_name("steward.db-wal"), path.with_name("steward.db-shm")):
            leftover.unlink(missing_ok=True)
        with pytest.raises(StoreUnavailable, match="deleted"):
            journal.check_available()  # what POST /v1/runs asks first: at once
        # The writer looks at most every IDENTITY_CHECK_SECONDS (the documented window).
        await asyncio.sleep(IDENTITY_CHECK_SECONDS)
        journal.append("r1", _succeeded(1))
        with pytest.raises(StoreUnavailable, match="deleted"):
            await journal.flush(patience=1.0)
        assert "deleted" in journal.health().reason
        assert not path.exists(), "reconnecting must not create an empty database"
        assert "deleted" in sqlite_db.identity_problem()
    finally:
        journal.close()


def test_a_replaced_database_file_is_noticed(sqlite_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "steward.db"
    assert sqlite_db.identity_problem() == ""
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)
    assert "replaced" in sqlite_db.identity_problem()


async def test_a_terminated_postgres_connection_heals(postgres_named: NamedPostgres) -> None:
    db = postgres_named.db
    journal = Journal(db)
    try:
        for n in range(3):
            journal.append("r1", _succeeded(n))
        await journal.flush()
        assert postgres_named.terminate_backends() >= 1  # the journal's own connection among them
        for n in range(3, 6):
            journal.append("r1", _succeeded(n))
        await journal.flush(patience=15)
        assert journal.stats.retries >= 1
        assert journal.health().ok
    finally:
        journal.close()
    assert _numbers(db) == list(range(6))
    with db.reader.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 6
    assert _chain_ok(db)


def test_probe_answers_a_write_round_trip(any_db: Database) -> None:
    assert any_db.probe() == ""


async def test_probe_says_why_a_locked_database_is_not_ready(
    sqlite_db: Database, tmp_path: Path
) -> None:
    holder = hold_sqlite_lock(tmp_path / "steward.db", 1.5)
    started = time.monotonic()
    problem = await asyncio.to_thread(sqlite_db.probe, 0.2)
    assert "locked" in problem and time.monotonic() - started < 1.2
    holder.join()
    assert sqlite_db.probe() == ""


async def test_closing_during_an_outage_releases_its_waiters_unacknowledged(
    sqlite_db: Database, tmp_path: Path
) -> None:
    journal = Journal(sqlite_db, lock_wait=0.2)
    holder = hold_sqlite_lock(tmp_path / "steward.db", 2.0)
    journal.append("r1", _succeeded(0))
    flushing = asyncio.ensure_future(journal.flush(patience=30))
    await asyncio.sleep(0.5)  # the writer has met the lock
    await asyncio.to_thread(journal.close)  # one more attempt, then it gives up
    with pytest.raises(StoreUnavailable, match="closed while the store was unavailable"):
        await flushing
    holder.join()
    assert _numbers(sqlite_db) == []  # nothing was acknowledged, nothing was written
