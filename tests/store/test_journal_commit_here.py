"""On SQLite a flush that finds the journal's writer idle commits on the caller's thread
(a keyed write's intent: one local commit, no hand-off to the writer thread and back).
It keeps every promise the writer keeps: nothing written twice when the answer is lost,
no wait on a lock held elsewhere (the writer takes over), order and group commit kept."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from test_journal_heals import hold_sqlite_lock

from steward.core.errors import StoreUnavailable
from steward.core.events import ToolSucceeded
from steward.store import Database, Journal
from steward.store.chain import PendingEvent, verify_chain
from steward.store.runs import read_journal


def _succeeded(n: int) -> ToolSucceeded:
    return ToolSucceeded(
        key=f"r:0:c{n}", tool="lookup", result={"n": n}, latency_ms=1.0, attempts=1
    )


def _numbers(db: Database) -> list[int]:
    return [e.event.result["n"] for e in read_journal(db, "r1")]  # type: ignore[union-attr]


def _chain_ok(db: Database) -> bool:
    with db.reader.connect() as connection:
        return verify_chain(connection).ok


async def test_a_flush_with_the_writer_idle_commits_on_the_callers_thread(
    sqlite_db: Database,
) -> None:
    journal = Journal(sqlite_db)
    try:
        for n in range(20):
            journal.append("r1", _succeeded(n))
            await journal.flush()
        assert journal.stats.commits_here == 20
        assert journal.stats.commits == 20
    finally:
        journal.close()
    assert _numbers(sqlite_db) == list(range(20))
    assert _chain_ok(sqlite_db)


async def test_concurrent_flushes_still_share_one_commit(sqlite_db: Database) -> None:
    journal = Journal(sqlite_db)

    async def producer(index: int) -> None:
        for n in range(25):
            journal.append(f"run{index}", _succeeded(n))
            await journal.flush()

    try:
        await asyncio.gather(*(producer(i) for i in range(8)))
        assert journal.stats.events == 200
        assert journal.stats.commits <= 200 / 4, "group commit on the caller's path"
    finally:
        journal.close()
    assert _chain_ok(sqlite_db)


async def test_events_nobody_flushes_are_written_by_the_idle_writer(
    sqlite_db: Database,
) -> None:
    journal = Journal(sqlite_db)
    try:
        written = asyncio.Event()
        loop = asyncio.get_running_loop()
        journal.subscribe(lambda _batch: loop.call_soon_threadsafe(written.set))
        journal.append("r1", _succeeded(0))
        await asyncio.wait_for(written.wait(), 5)
        assert journal.stats.commits == 1 and journal.stats.commits_here == 0
    finally:
        journal.close()
    assert _numbers(sqlite_db) == [0]


class _LostHere(Journal):
    """The caller's commit lands, then its connection dies before the answer."""

    lost = 0

    def _write_here(self, batch: list[PendingEvent]) -> bool:
        written = super()._write_here(batch)
        if self.lost == 0:
            self.lost += 1
            raise sqlite3.OperationalError("disk I/O error")  # transient: retried
        return written


async def test_a_callers_commit_whose_answer_was_lost_is_not_written_twice(
    sqlite_db: Database,
) -> None:
    journal = _LostHere(sqlite_db)
    try:
        journal.append("r1", _succeeded(0))
        journal.append("r1", _succeeded(1))
        await journal.flush(patience=15)  # the writer settles it: landed, not rewritten
        journal.append("r1", _succeeded(2))
        await journal.flush(patience=15)
    finally:
        journal.close()
    assert journal.lost == 1
    assert _numbers(sqlite_db) == [0, 1, 2]
    assert _chain_ok(sqlite_db)


async def test_a_lock_held_elsewhere_never_blocks_the_callers_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    journal = Journal(sqlite_db, lock_wait=0.2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        holder = hold_sqlite_lock(tmp_path / "steward.db", 1.5)
        journal.append("r1", _succeeded(0))
        started, before = time.monotonic(), ticks
        with pytest.raises(StoreUnavailable):
            await journal.flush(patience=0.6)
        waited = time.monotonic() - started
        assert ticks - before >= 0.5 * waited / 0.01, "the event loop kept running"
        await journal.flush(patience=15)  # the lock ends; the writer wrote it
        holder.join()
        assert journal.stats.commits_here == 0
    finally:
        ticking.cancel()
        journal.close()
    assert _numbers(sqlite_db) == [0]
