"""The run journal with group commit.

Callers append events without waiting; a writer thread takes everything queued, writes it
to the chain in one transaction, and then releases everyone waiting on those events. Under
load one commit carries many events, so throughput approaches the database's batched
insert floor while `await journal.flush()` still means "everything I appended is durable".

Durability is asked for only where it matters: before a side effect (the write-ahead
intent), before a run is reported waiting or finished, and on close. A crash can lose
only events nobody was told were durable; the runner's replay re-creates those.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from steward.core.errors import StoreError
from steward.core.events import Event, encode_event, event_type
from steward.core.faults import crashpoint
from steward.store.chain import PendingEvent, append_rows
from steward.store.database import Database

Listener = Callable[[list[PendingEvent]], None]


@dataclass(slots=True)
class _Waiter:
    ticket: int
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[None] | None = None
    event: threading.Event | None = None


@dataclass(slots=True)
class JournalStats:
    commits: int = 0
    events: int = 0
    largest_batch: int = 0
    listeners_failed: int = 0
    last_error: str = ""


class Journal:
    def __init__(self, db: Database, *, max_batch: int = 1000, linger: float = 0.002) -> None:
        self.db = db
        self.max_batch = max_batch
        self.linger = linger
        self.stats = JournalStats()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[PendingEvent] = []
        self._appended = 0  # tickets handed out
        self._durable = 0  # tickets committed
        self._waiters: list[_Waiter] = []
        self._failure: BaseException | None = None
        self._closing = False
        self._idle = False  # the writer is parked on the condition
        self._listeners: list[Listener] = []
        self._thread = threading.Thread(target=self._run, name="steward-journal", daemon=True)
        self._thread.start()

    # -- producers ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Called on the writer thread with each committed batch (events emitted only
        after the write commits). A failing listener never affects the journal."""
        self._listeners.append(listener)

    def append(self, run_id: str | None, event: Event, ts: float | None = None) -> int:
        """Queue an event; returns its ticket. Cheap: encoding happens here, I/O does not."""
        pending = PendingEvent(
            run_id,
            event_type(event),
            ts if ts is not None else time.time(),
            encode_event(event),
            event,
        )
        with self._lock:
            if self._failure is not None:
                raise StoreError(f"journal is down: {self._failure}")
            if self._closing:
                raise StoreError("journal is closed")
            self._queue.append(pending)
            self._appended += 1
            ticket = self._appended
            if self._idle:
                self._wake.notify()
        return ticket

    async def flush(self, ticket: int | None = None) -> None:
        """Wait until everything appended so far (or up to `ticket`) is committed."""
        loop = asyncio.get_running_loop()
        with self._lock:
            target = self._appended if ticket is None else ticket
            if self._failure is not None:
                raise StoreError(f"journal is down: {self._failure}")
            if self._durable >= target:
                return
            waiter = _Waiter(target, loop, loop.create_future())
            self._waiters.append(waiter)
            self._wake.notify()
        assert waiter.future is not None
        await waiter.future

    def flush_sync(self, ticket: int | None = None, timeout: float = 30.0) -> None:
        with self._lock:
            target = self._appended if ticket is None else ticket
            if self._failure is not None:
                raise StoreError(f"journal is down: {self._failure}")
            if self._durable >= target:
                return
            waiter = _Waiter(target, None, event=threading.Event())
            self._waiters.append(waiter)
            self._wake.notify()
        assert waiter.event is not None
        if not waiter.event.wait(timeout):
            raise StoreError("journal flush timed out")
        if self._failure is not None:
            raise StoreError(f"journal is down: {self._failure}")

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout=30)

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        # The writer keeps one connection for its life: checking one out of the pool per
        # batch costs a reset (a ROLLBACK) on every return, which doubled commit latency.
        connection: Connection | None = None
        try:
            connection = self.db.writer.connect()
            self._loop(connection)
        except BaseException as exc:  # any failure stops the journal: fail closed
            self._fail(exc)
        finally:
            if connection is not None:
                connection.close()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._failure = exc
            self.stats.last_error = repr(exc)
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _release(waiter, exc)

    def _loop(self, connection: Connection) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                if not self._queue and self._closing:
                    return
                if not self._waiters and not self._closing and len(self._queue) < self.max_batch:
                    # Nobody awaits these events yet: linger briefly so one commit carries
                    # more of them and this thread contends less for the GIL. A flush()
                    # wakes it at once.
                    self._wake.wait(self.linger)
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                upto = self._durable + len(batch)
            self._write(connection, batch)
            crashpoint("journal.committed")
            self._committed(batch, upto)

    def _write(self, connection: Connection, batch: list[PendingEvent]) -> None:
        """One transaction on the writer's own DBAPI connection. SQLAlchemy's per-statement
        machinery is skipped here: it cost more than SQLite's commit itself."""
        raw = connection.connection
        dialect = connection.dialect
        cursor = raw.cursor()
        try:
            if dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            append_rows(cursor, dialect.name, dialect.paramstyle, batch)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.close()

    def _committed(self, batch: list[PendingEvent], upto: int) -> None:
        with self._lock:
            self._durable = upto
            self.stats.commits += 1
            self.stats.events += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            ready = [w for w in self._waiters if w.ticket <= upto]
            self._waiters = [w for w in self._waiters if w.ticket > upto]
        for waiter in ready:
            _release(waiter, None)
        self.publish(batch)

    def publish(self, batch: list[PendingEvent]) -> None:
        """Hand committed events to the listeners: this journal's own batches, and events
        another transaction committed (an approval decided outside any run)."""
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:
                self.stats.listeners_failed += 1


def _release(waiter: _Waiter, error: BaseException | None) -> None:
    if waiter.event is not None:
        waiter.event.set()
        return
    future, loop = waiter.future, waiter.loop
    assert future is not None and loop is not None

    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(StoreError(f"journal write failed: {error}"))

    with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting any more
        loop.call_soon_threadsafe(settle)
