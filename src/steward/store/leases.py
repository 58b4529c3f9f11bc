"""Which process drives a run, when several serve one PostgreSQL database (replicas).

A process drives a run only while it holds the run's lease: a session-level advisory
lock on one connection of its own, taken before the run is started or resumed and given
back when the activation ends (the run waits, finishes, or the process stops). A process
that dies loses its session, and PostgreSQL releases every lease it held at once: a
replica starting, or any live replica's periodic sweep, then finds the run `running` or
`queued` with nobody holding it, takes the lease and resumes it from its journal. A run
whose lease another live process holds is left alone, so every replica may recover at
start and sweep. `unheld` says in one query (pg_locks) which of many runs nobody leases,
so a sweep does not try, one round trip each, the leases live replicas hold.

A command-line process that drives runs (`steward run`, `steward runs resume`, an
approval resumed inline: `holding`; `steward approvals sweep`, `steward demo`) holds
their leases too, so that no server's sweep takes over a run it drives.

On SQLite (one server per database) a lease is this process's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from sqlalchemy import text

from steward.store.database import Database
from steward.store.transient import is_transient, unavailable

log = logging.getLogger("steward.store.leases")

# A run's lease: the advisory lock whose 64-bit key is the hash of its id (one definition
# for taking, giving back and asking who holds leases now).
_KEY = "hashtextextended({run_id}, 7431)"
_TAKE = f"SELECT pg_try_advisory_lock({_KEY.format(run_id='%s')})"
_GIVE = f"SELECT pg_advisory_unlock({_KEY.format(run_id='%s')})"
# Which of the runs named are leased now, by any session of this database: pg_locks
# shows a bigint advisory key as classid (high 32 bits) and objid (low), objsubid 1.
_HELD = f"""
SELECT run_id FROM unnest(CAST(:run_ids AS text[])) AS run_id
WHERE {_KEY.format(run_id="run_id")} IN (
    SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""


class RunLeases:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.shared = db.dialect == "postgresql"  # other processes may drive its runs
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._lost: set[str] = set()  # leases a lost session took with it, another holds now
        self._connection: Any = None  # the driver's connection holding the leases

    def take(self, run_id: str) -> bool:
        """Hold the run's lease; False when another process holds it; StoreUnavailable
        when the database cannot say. Blocking: call it off the event loop."""
        with self._lock:
            if run_id in self._held:
                return False  # this process drives it already
            try:
                if self.shared and not self._ask(_TAKE, run_id):
                    return False
            except Exception as exc:  # nobody may drive a run whose lease cannot be had
                if is_transient(exc):
                    raise unavailable(exc) from exc
                raise
            self._held.add(run_id)
            return True

    def give_back(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self._held:
                return
            self._held.discard(run_id)
            if self.shared:
                with contextlib.suppress(Exception):  # a lost session released it anyway
                    self._ask(_GIVE, run_id)

    async def acquire(self, run_id: str) -> bool:
        """`take` from an event loop: off the loop only where it is I/O (shared leases;
        this process's own bookkeeping otherwise)."""
        if not self.shared:
            return self.take(run_id)
        return await asyncio.to_thread(self.take, run_id)

    async def release(self, run_id: str) -> None:
        """`give_back` from an event loop; a cancelled caller still gives it back."""
        if not self.shared:
            self.give_back(run_id)
            return
        await asyncio.shield(asyncio.to_thread(self.give_back, run_id))

    @contextlib.asynccontextmanager
    async def driving(self, run_id: str) -> AsyncIterator[bool]:
        """The run's lease while the block drives it; yields False when another process
        holds it (the block must not drive the run then)."""
        took = await self.acquire(run_id)
        try:
            yield took
        finally:
            if took:
                await self.release(run_id)

    def verify(self) -> frozenset[str]:
        """The runs whose lease this process lost since it last asked: its session died
        and, by the time a new one asked for them again, another process held them (a
        replica's sweep took the run over). Whoever drives one of them here must stop:
        the run has another driver. Asks the session once (a round trip), so a dead one
        is found within the caller's cadence, not only at the next take. Blocking."""
        with self._lock:
            if self.shared and self._held:
                try:
                    self._ping()
                except Exception:  # the session died, and every lease it held with it
                    with contextlib.suppress(Exception):  # unreachable: asked next time
                        self._reconnect()
            lost, self._lost = frozenset(self._lost), set()
            return lost

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def unheld(self, run_ids: Iterable[str]) -> list[str]:
        """The runs of `run_ids` whose lease no process holds now (shared leases; with
        leases of this process alone, those it does not hold): one query for them all,
        so a sweep does not try each lease a live replica holds. A lease may be taken
        between this answer and `take`, which still decides. StoreUnavailable when the
        database cannot say: nobody may take over a run then. Blocking."""
        wanted = list(dict.fromkeys(run_ids))
        if not self.shared:
            mine = self.held()
            return [run_id for run_id in wanted if run_id not in mine]
        if not wanted:
            return []
        try:
            with self.db.reader.connect() as connection:
                held = set(connection.execute(text(_HELD), {"run_ids": wanted}).scalars())
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(exc) from exc
            raise
        return [run_id for run_id in wanted if run_id not in held]

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def _ask(self, statement: str, run_id: str) -> bool:
        try:
            return self._ask_once(statement, run_id)
        except Exception:  # the session died, and every lease it held with it
            self._reconnect()
            return self._ask_once(statement, run_id)

    def _ask_once(self, statement: str, run_id: str) -> bool:
        if self._connection is None:
            self._reconnect()
        cursor = self._connection.cursor()
        try:
            cursor.execute(statement, (run_id,))
            return bool(cursor.fetchone()[0])
        finally:
            cursor.close()

    def _ping(self) -> None:
        if self._connection is None:
            raise ConnectionError("no lease session")
        cursor = self._connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        finally:
            cursor.close()

    def _reconnect(self) -> None:
        """A new session, holding again what the last one held. A lease another process
        took meanwhile is no longer this process's: it goes to `_lost`, for `verify` to
        report, so its activation here stops (the run has another driver)."""
        broken, self._connection = self._connection, None
        if broken is not None:
            with contextlib.suppress(Exception):
                broken.close()
        self._connection = self._connect()
        for held in sorted(self._held):
            if not self._ask_once(_TAKE, held):
                log.error("run %s: its lease was lost with a database session; another "
                          "process drives it now, and this one stops", held)  # fmt: skip
                self._held.discard(held)
                self._lost.add(held)

    def _connect(self) -> Any:
        pooled = self.db.writer.raw_connection()
        pooled.detach()  # its locks must never go back to the pool with it
        driver: Any = pooled.dbapi_connection
        driver.autocommit = True
        return driver


@contextlib.contextmanager
def holding(db: Database, run_id: str) -> Iterator[bool]:
    """The run's lease for this process while the block runs (a command driving one run);
    yields False when another process holds it: the block must not drive the run then.
    Blocking (a command's thread, not an event loop's)."""
    leases = RunLeases(db)
    try:
        yield leases.take(run_id)
    finally:
        leases.close()  # its session ends: the lease goes back
