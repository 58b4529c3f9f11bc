"""Which process drives a run, when several serve one PostgreSQL database (replicas).

A process drives a run only while it holds the run's lease: a session-level advisory
lock on one connection of its own, taken before the run is started or resumed and given
back when the activation ends (the run waits, finishes, or the process stops). A process
that dies loses its session, and PostgreSQL releases every lease it held at once: a
replica starting then finds the run `running` or `queued` with nobody holding it, takes
the lease and resumes it from its journal. A run whose lease another live process holds
is left alone, so every replica may recover at start.

On SQLite (one server per database) a lease is this process's own bookkeeping.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from steward.store.database import Database
from steward.store.transient import is_transient, unavailable

log = logging.getLogger("steward.store.leases")

_TAKE = "SELECT pg_try_advisory_lock(hashtextextended(%s, 7431))"
_GIVE = "SELECT pg_advisory_unlock(hashtextextended(%s, 7431))"


class RunLeases:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.shared = db.dialect == "postgresql"  # other processes may drive its runs
        self._lock = threading.Lock()
        self._held: set[str] = set()
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

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

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

    def _reconnect(self) -> None:
        """A new session, holding again what the last one held (or saying which lease
        another process took meanwhile: that run now has two drivers until one ends)."""
        broken, self._connection = self._connection, None
        if broken is not None:
            with contextlib.suppress(Exception):
                broken.close()
        self._connection = self._connect()
        for held in sorted(self._held):
            if not self._ask_once(_TAKE, held):
                log.error("run %s: its lease was lost with a database session", held)

    def _connect(self) -> Any:
        pooled = self.db.writer.raw_connection()
        pooled.detach()  # its locks must never go back to the pool with it
        driver: Any = pooled.dbapi_connection
        driver.autocommit = True
        return driver
