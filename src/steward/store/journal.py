"""The run journal with group commit.

Callers append events without waiting; a writer thread takes everything queued, writes it
to the chain in one transaction, and then releases everyone waiting on those events. Under
load one commit carries many events, so throughput approaches the database's batched
insert floor while `await journal.flush()` still means "everything I appended is durable".

Durability is asked for only where it matters: before a side effect (the write-ahead
intent), before a run is reported waiting or finished, and on close. A crash can lose
only events nobody was told were durable; the runner's replay re-creates those.

The journal heals. A transient store fault (a lock held elsewhere, a connection the
database dropped) makes the writer drop its connection, wait (capped exponential
backoff with jitter), reconnect and write the same batch again: appends keep queuing in
order meanwhile, and waiters wait, each at most its patience, then get StoreUnavailable.
A retried batch is never written twice: the hash of the row it would have ended the chain
with tells whether the attempt whose answer was lost committed after all.

On SQLite a flush that finds the writer idle (nothing in flight, nobody else waiting)
commits on the caller's own thread instead of waking the writer: a keyed write's intent
then costs one local commit, not two thread hand-offs. It never waits for a lock there
(a busy database hands the batch back to the writer), and an attempt that fails after
it began goes to the writer as a batch whose fate is unknown, checked like any other
retry. On PostgreSQL a batch is one statement (store/chain_pg.py), and the writer
regroups: a batch waits (at most half the last write's time) for the waiters the last
commit released, who come back with their next events within microseconds, instead of
leaving with the first of them and making the rest wait a whole commit (a WAL flush).

A SQLite file deleted or replaced under the server is never written to or acknowledged.
A permanent error (a bug, a constraint) stops the journal: it fails closed until a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from steward.core.backoff import backoff_ceiling, backoff_delay
from steward.core.errors import StoreUnavailable
from steward.core.events import Event, encode_event, event_type
from steward.core.faults import crashpoint
from steward.store.chain import ChainTip, PendingEvent, append_rows, landed
from steward.store.chain_pg import MAX_MOVES, append_autocommit, head_moved, read_head
from steward.store.database import Database
from steward.store.transient import BACKOFF_BASE, BACKOFF_CAP, is_transient, reason

Listener = Callable[[list[PendingEvent]], None]
log = logging.getLogger("steward.store.journal")

REAP_SECONDS = 0.1  # how often overdue waiters are looked for


@dataclass(slots=True)
class _Waiter:
    ticket: int
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[None] | None = None
    event: threading.Event | None = None
    error: StoreUnavailable | None = None
    patience: float = 0.0
    deadline: float = 0.0  # time.monotonic() after which the reaper releases it


@dataclass(slots=True)
class JournalStats:
    commits: int = 0
    events: int = 0
    largest_batch: int = 0
    listeners_failed: int = 0
    retries: int = 0  # attempts that met a transient fault
    outages: int = 0  # times the store became unavailable
    head_moves: int = 0  # PostgreSQL: batches re-hashed after another writer appended first
    commits_here: int = 0  # SQLite: commits made on a flushing caller's thread (of `commits`)
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class JournalHealth:
    """Whether the journal can make appends durable now: `ok`, `unavailable` (a
    transient fault; it is retrying) or `stopped` (a permanent fault; restart)."""

    state: str = "ok"
    reason: str = ""
    since: float = 0.0  # time.monotonic() when this state began
    retry_after: float = 0.0  # seconds, a hint for clients

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def unavailable(self) -> bool:
        return self.state == "unavailable"

    def error(self) -> StoreUnavailable:
        return StoreUnavailable(self.reason, retry_after=self.retry_after)


class Journal:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 1000,
        linger: float = 0.002,
        lock_wait: float = 1.0,
        patience: float = 30.0,
        commit_here: bool = True,
        one_statement: bool = True,
    ) -> None:
        """`lock_wait`: seconds a write waits for a lock held elsewhere before the store
        counts as unavailable; `patience`: how long flush() waits by default;
        `commit_here`: on SQLite, a flush finding the writer idle commits itself;
        `one_statement`: on PostgreSQL, a batch is one statement (store/chain_pg.py)."""
        self.db = db
        self.max_batch = max_batch
        self.linger = linger
        self.lock_wait = lock_wait
        self.patience = patience
        self.stats = JournalStats()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[PendingEvent] = []
        self._appended = 0  # tickets handed out
        self._durable = 0  # tickets committed
        self._waiters: list[_Waiter] = []
        self._health = JournalHealth()
        self._closing = False
        self._stop = threading.Event()  # set by close(): cuts a backoff pause short
        self._writer_done = threading.Event()  # the reaper works until the writer ends
        self._idle = False  # the writer is parked on the condition
        self._busy = False  # the writer has a batch in flight
        # SQLite: a flush may commit on its own thread while the writer is idle; while it
        # does, it holds the writer's role (`_borrowed`), and a batch its attempt left
        # in doubt is handed over with the error (`_handover`) for the writer to settle
        self._here_allowed = commit_here and db.dialect == "sqlite"
        self._borrowed = False
        self._handover: tuple[list[PendingEvent], BaseException] | None = None
        self._here: Connection | None = None  # the borrowing caller's connection
        # ...so on SQLite an append does not wake the writer: a flush commits, or the
        # idle writer finds the events within this many seconds
        self._idle_poll = 5 * linger if self._here_allowed else None
        self._listeners: list[Listener] = []
        # the waiters the last commit released, who come back with more events soon, and
        # how long that commit's write took (the writer regroups a batch for them)
        self._returning = 0
        self._write_time = 0.0
        self._connection: Connection | None = None
        self._tip: ChainTip | None = None  # where the batch in flight ends the chain
        self._head: ChainTip | None = None  # PostgreSQL: where our last commit ended it
        # psycopg 3 on PostgreSQL: one statement per batch (store/chain_pg.py)
        self._one_statement = one_statement and db.writer.dialect.driver == "psycopg"
        self._thread = threading.Thread(target=self._run, name="steward-journal", daemon=True)
        self._thread.start()
        self._reaper = threading.Thread(
            target=self._reap, name="steward-journal-reaper", daemon=True
        )
        self._reaper.start()

    # -- producers ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Called on the writer thread with each committed batch (events emitted only
        after the write commits). A failing listener never affects the journal."""
        self._listeners.append(listener)

    def health(self) -> JournalHealth:
        return self._health

    def check_available(self) -> None:
        """Raise StoreUnavailable unless a new append can be made durable now: for a
        caller about to create something a client will be told exists. One stat."""
        health = self._health
        if not health.ok:
            raise health.error()
        problem = self.db.identity_problem()
        if problem:
            raise StoreUnavailable(problem, retry_after=self._retry_after(1))

    def append(self, run_id: str | None, event: Event, ts: float | None = None) -> int:
        """Queue an event; returns its ticket. Cheap: encoding happens here, I/O does not.
        While the store is unavailable appends still queue, in order, for the writer to
        write once it heals; only a stopped or closed journal refuses them."""
        pending = PendingEvent(
            run_id,
            event_type(event),
            ts if ts is not None else time.time(),
            encode_event(event),
            event,
        )
        with self._lock:
            if self._health.state == "stopped":
                raise self._health.error()
            if self._closing:
                raise StoreUnavailable("the journal is closed: the server is stopping")
            self._queue.append(pending)
            self._appended += 1
            ticket = self._appended
            if self._idle and (self._idle_poll is None or len(self._queue) >= self.max_batch):
                self._wake.notify()
        return ticket

    async def flush(self, ticket: int | None = None, patience: float | None = None) -> None:
        """Wait until everything appended so far (or up to `ticket`) is committed, at
        most `patience` seconds (default: the journal's); StoreUnavailable if it is not
        durable by then or the journal stopped."""
        if self._here_allowed and not self._busy:
            # Let every task ready to run append (and come here) first: the first of
            # them to find the writer idle then commits all their events at once.
            if ticket is None:
                ticket = self._appended  # what was appended so far: not what comes next
            await asyncio.sleep(0)
            if self._commit_here(ticket):
                return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(0, loop, loop.create_future())
        if self._enqueue(ticket, waiter, patience):
            assert waiter.future is not None
            await waiter.future  # no timer per flush: the reaper enforces the deadline

    def flush_sync(self, ticket: int | None = None, patience: float | None = None) -> None:
        waiter = _Waiter(0, None, event=threading.Event())
        if self._enqueue(ticket, waiter, patience):
            assert waiter.event is not None
            waiter.event.wait()
            if waiter.error is not None:
                raise waiter.error

    def _commit_here(self, ticket: int | None) -> bool:
        """SQLite: commit what is queued on this thread when the writer is idle; True when
        `ticket` (everything, if None) is durable on return. False: wait for the writer."""
        with self._lock:
            if self._durable >= (self._appended if ticket is None else ticket):
                return True
            if (
                self._busy
                or self._borrowed
                or self._waiters
                or self._closing
                or self._handover is not None
                or not self._health.ok
                or not self._queue
                or len(self._queue) > self.max_batch
                or (ticket is not None and ticket > self._appended)
            ):
                return False
            batch, self._queue = self._queue, []
            upto = self._durable + len(batch)
            self._borrowed = True
        try:
            written = self._write_here(batch)
        except BaseException as exc:  # its fate is unknown: the writer settles it
            self._drop_here()
            with self._lock:
                self._handover = (batch, exc)
                self._borrowed = False
                self._wake.notify()
            return False
        if not written:  # the database was busy: nothing was written, the writer waits
            with self._lock:
                self._queue[:0] = batch
                self._borrowed = False
                self._wake.notify()
            return False
        crashpoint("journal.committed")
        try:  # still holding the writer's role: batches are counted and published in order
            self._committed(batch, upto)
        finally:
            with self._lock:
                self._borrowed = False
                self.stats.commits_here += 1
                if self._queue or self._waiters or self._closing:
                    self._wake.notify()
        return True

    def _write_here(self, batch: list[PendingEvent]) -> bool:
        """One attempt on the borrowing caller's connection, which never waits for a lock:
        False if BEGIN found the database busy (nothing written)."""
        if self._here is None:
            problem = self.db.identity_problem()
            if problem:
                raise StoreUnavailable(problem)
            self._here = self._connect(lock_wait=0.0)
        raw: Any = self._here.connection.dbapi_connection  # the pool's wrapper costs µs
        cursor = raw.cursor()
        try:
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    return False
                raise
            self._tip = None
            try:
                self._tip = append_rows(cursor, "sqlite", "qmark", batch)
                raw.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    raw.rollback()
                raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        problem = self.db.commit_check()
        if problem:
            raise StoreUnavailable(problem)
        return True

    def _drop_here(self) -> None:
        connection, self._here = self._here, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()
                connection.close()

    def _enqueue(self, ticket: int | None, waiter: _Waiter, patience: float | None) -> bool:
        """Register a waiter for `ticket` (everything so far if None); False if durable."""
        waiter.patience = self.patience if patience is None else patience
        waiter.deadline = time.monotonic() + waiter.patience
        with self._lock:
            waiter.ticket = self._appended if ticket is None else ticket
            if self._health.state == "stopped":
                raise self._health.error()
            if self._durable >= waiter.ticket:
                return False
            self._waiters.append(waiter)
            self._wake.notify()
        return True

    def _reap(self) -> None:
        """Release waiters past their deadline with StoreUnavailable. A thread of its own:
        the writer may be stuck in a driver call while the store is unreachable, and an
        asyncio timer per flush cost ~25 µs of every commit's latency."""
        while not self._writer_done.wait(REAP_SECONDS):
            now = time.monotonic()
            with self._lock:
                if not any(w.deadline <= now for w in self._waiters):
                    continue
                overdue = [w for w in self._waiters if w.deadline <= now]
                self._waiters = [w for w in self._waiters if w.deadline > now]
                health = self._health
            for waiter in overdue:
                _release(waiter, self._overdue(health, waiter.patience))

    def _overdue(self, health: JournalHealth, patience: float) -> StoreUnavailable:
        if not health.ok:
            return health.error()
        return StoreUnavailable(
            f"the store did not confirm the write within {patience:g} s",
            retry_after=self._retry_after(1),
        )

    def close(self) -> None:
        """Write what is queued and stop. If the store is unavailable now, it gets one
        more attempt: what cannot be written then was never acknowledged, and its
        waiters get StoreUnavailable."""
        with self._lock:
            self._closing = True
            self._stop.set()
            self._wake.notify()
        self._thread.join(timeout=30)
        self._reaper.join(timeout=5)
        with self._lock:
            if not self._borrowed:
                self._here_allowed = False
                connection, self._here = self._here, None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        # The writer keeps one connection while it works: checking one out of the pool
        # per batch costs a reset (a ROLLBACK) on every return, which doubled commit
        # latency. A transient fault replaces it; a permanent one stops the journal.
        try:
            self._loop()
        except BaseException as exc:  # a permanent failure stops the journal: fail closed
            self._stopped(exc)
        finally:
            self._disconnect()
            self._writer_done.set()

    def _loop(self) -> None:
        while True:
            failed: BaseException | None = None
            lingered = False
            regroup: float | None = None  # time.monotonic() until which a batch regroups
            with self._lock:
                while True:
                    if self._borrowed or (
                        not self._queue and self._handover is None and not self._closing
                    ):
                        self._idle = True
                        self._wake.wait(self._idle_poll)
                        self._idle = False
                        continue
                    if self._handover is not None:  # a caller's attempt left it in doubt
                        batch, failed = self._handover
                        self._handover = None
                        break
                    if not self._queue and self._closing:
                        return
                    if (
                        not lingered
                        and not self._waiters
                        and not self._closing
                        and len(self._queue) < self.max_batch
                    ):
                        # Nobody awaits these events yet: linger briefly so one commit
                        # carries more of them and this thread contends less for the GIL.
                        # A flush() wakes it at once (or, on SQLite, commits them itself).
                        lingered = True
                        self._wake.wait(self.linger)
                        continue
                    if regroup is None:
                        regroup = time.monotonic() + self._regroup_wait()
                    if len(self._queue) < self._returning and not self._closing:
                        # The waiters the last commit released come back with their next
                        # events within microseconds: the first of them must not leave
                        # with a commit of its own while the rest wait a whole commit
                        # for the next (a fraction of a commit's time at most).
                        left = regroup - time.monotonic()
                        if left > 0:
                            self._wake.wait(left)
                            continue
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                    break
                upto = self._durable + len(batch)
                self._busy = True
            started = time.perf_counter()
            try:
                self._write_durably(batch, failed)
                self._write_time = time.perf_counter() - started
                crashpoint("journal.committed")
                self._committed(batch, upto)
            finally:
                with self._lock:
                    self._busy = False

    def _regroup_wait(self) -> float:
        """How long a batch may wait for the producers the last commit released: half the
        last write's time (PostgreSQL: a commit waits for the WAL flush), at most the
        linger; none where a flush commits on its own thread (SQLite)."""
        if self._here_allowed:
            return 0.0
        return min(self.linger, self._write_time / 2)

    def _write_durably(
        self, batch: list[PendingEvent], failed: BaseException | None = None
    ) -> None:
        """Write the batch exactly once, however many attempts that takes. `failed`: the
        error of a first attempt made elsewhere (a caller's), whose fate is unknown."""
        attempt = 0
        while True:
            try:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                self._attempt(batch, retry=attempt > 0)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                self._disconnect(broken=True)
                self._unavailable(exc, attempt, len(batch))
                if self._stop.is_set():
                    raise StoreUnavailable(
                        f"the journal closed while the store was unavailable ({reason(exc)}); "
                        f"{len(batch) + len(self._queue)} events never acknowledged were not "
                        "written"
                    ) from exc
                self._stop.wait(backoff_delay(attempt, BACKOFF_BASE, BACKOFF_CAP))
                continue
            if attempt:
                self._recovered(attempt)
            return

    def _attempt(self, batch: list[PendingEvent], *, retry: bool) -> None:
        if self._connection is None:
            # A (re)connection opens whatever the path names now: never another file.
            problem = self.db.identity_problem()
            if problem:
                raise StoreUnavailable(problem)
            self._connection = self._connect()
        if retry and self._tip is not None and self._landed(self._connection, self._tip):
            return  # the attempt whose answer was lost had committed
        self._tip = None
        self._write(self._connection, batch)
        # A commit into a file deleted or replaced meanwhile (the open connection still
        # writes its old inode) is lost with that file: it is never acknowledged.
        problem = self.db.commit_check()
        if problem:
            raise StoreUnavailable(problem)

    def _connect(self, lock_wait: float | None = None) -> Connection:
        wait = self.lock_wait if lock_wait is None else lock_wait
        connection = self.db.writer.connect()
        connection.detach()  # its session settings below never go back to the pool
        raw = connection.connection
        try:
            cursor = raw.cursor()
            try:
                if connection.dialect.name == "sqlite":
                    cursor.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
                else:
                    cursor.execute(f"SET lock_timeout = {int(wait * 1000)}")
                    raw.commit()
                    if self._one_statement:  # each append is its own transaction (chain_pg.py)
                        driver: Any = raw.dbapi_connection
                        driver.autocommit = True
            finally:
                cursor.close()
        except BaseException:
            with contextlib.suppress(Exception):
                connection.invalidate()
            connection.close()
            raise
        return connection

    def _disconnect(self, *, broken: bool = False) -> None:
        connection, self._connection = self._connection, None
        self._head = None
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be dead already
                if broken:
                    connection.invalidate()  # closed as is: no reset on a dead connection
                connection.close()

    def _landed(self, connection: Connection, tip: ChainTip) -> bool:
        raw = connection.connection
        cursor = raw.cursor()
        try:
            found = landed(cursor, connection.dialect.paramstyle, tip)
            raw.rollback()
        finally:
            cursor.close()
        if found:
            log.warning("journal: a commit whose answer was lost had landed; not rewriting it")
        return found

    def _write(self, connection: Connection, batch: list[PendingEvent]) -> None:
        """One transaction on the writer's own DBAPI connection. SQLAlchemy's per-statement
        machinery is skipped here: it cost more than SQLite's commit itself."""
        if self._one_statement:
            self._write_one_statement(connection, batch)
            return
        raw = connection.connection
        dialect = connection.dialect
        cursor = raw.cursor()
        try:
            if dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            self._tip = append_rows(cursor, dialect.name, dialect.paramstyle, batch)
            raw.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection cannot roll back
                raw.rollback()
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _write_one_statement(self, connection: Connection, batch: list[PendingEvent]) -> None:
        """PostgreSQL: one statement from where our last commit ended the chain; when
        another transaction moved the head meanwhile, nothing was written: read it and
        go again (store/chain_pg.py)."""
        raw = connection.connection.dbapi_connection
        for _ in range(MAX_MOVES):
            try:
                if self._head is None:
                    self._head = read_head(raw)
                self._head = append_autocommit(raw, self._head, batch, self._will_end)
                return
            except BaseException as exc:
                self._head = None
                if not head_moved(exc):
                    raise
                self._tip = None  # that attempt wrote nothing
                self.stats.head_moves += 1
        raise StoreUnavailable(f"the chain head moved {MAX_MOVES} times in a row under this writer")

    def _will_end(self, tip: ChainTip) -> None:
        self._tip = tip

    def _retry_after(self, attempt: int) -> float:
        return float(
            max(1, math.ceil(self.lock_wait + backoff_ceiling(attempt, BACKOFF_BASE, BACKOFF_CAP)))
        )

    def _unavailable(self, exc: BaseException, attempt: int, waiting: int) -> None:
        why = reason(exc)
        with self._lock:
            first = self._health.ok
            since = time.monotonic() if first else self._health.since
            self._health = JournalHealth(
                "unavailable",
                f"the store is unavailable: {why}",
                since,
                self._retry_after(attempt + 1),
            )
            self.stats.retries += 1
            self.stats.outages += first
            self.stats.last_error = repr(exc)
        if first:
            log.warning(
                "journal: the store is unavailable (%s); %d events wait, retrying with backoff",
                why,
                waiting,
            )

    def _recovered(self, attempts: int) -> None:
        with self._lock:
            down = time.monotonic() - self._health.since
            self._health = JournalHealth()
        log.warning("journal: the store is available again (%d retries, %.1f s)", attempts, down)

    def _stopped(self, exc: BaseException) -> None:
        why = reason(exc)
        closing = isinstance(exc, StoreUnavailable)
        message = (
            why
            if closing
            else (
                f"the journal stopped after a permanent store error ({why}); "
                "restart the server once the database is fixed"
            )
        )
        error = StoreUnavailable(message, retry_after=self._retry_after(1))
        with self._lock:
            self._health = JournalHealth("stopped", message, time.monotonic(), error.retry_after)
            self.stats.last_error = repr(exc)
            waiters, self._waiters = self._waiters, []
        log.error("journal: %s", message, exc_info=None if closing else exc)
        for waiter in waiters:
            _release(waiter, error)

    def _committed(self, batch: list[PendingEvent], upto: int) -> None:
        with self._lock:
            self._durable = upto
            self.stats.commits += 1
            self.stats.events += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            ready = [w for w in self._waiters if w.ticket <= upto]
            self._waiters = [w for w in self._waiters if w.ticket > upto]
            self._returning = len(ready)
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


def _release(waiter: _Waiter, error: StoreUnavailable | None) -> None:
    if waiter.event is not None:
        waiter.error = error
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
            future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting any more
        loop.call_soon_threadsafe(settle)
