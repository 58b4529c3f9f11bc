"""Which store errors are transient: the one place that tells a fault another attempt on
a fresh connection may get past (a lock held elsewhere, a dropped or terminated
connection, a database restarting, a file that cannot be opened now) from a permanent
one (a bug, a constraint violation, a missing table), which must fail closed.

Errors arrive raw from the DBAPI (the journal writes through the driver's cursor) or
wrapped by SQLAlchemy; both are classified here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from steward.core.backoff import backoff_delay
from steward.core.errors import StoreUnavailable

log = logging.getLogger("steward.store")
T = TypeVar("T")
# one backoff for every store retry: the journal's writer and the steps outside it
BACKOFF_BASE = 0.05  # seconds before the first retry, at most
BACKOFF_CAP = 2.0  # the longest pause between two attempts

# SQLite reports every fault as OperationalError; only these messages are about the
# moment rather than the database or the statement.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
    "locking protocol",
)


def _psycopg_transient(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return False
    # OperationalError covers a terminated backend (AdminShutdown), a lost or refused
    # connection, lock_timeout, serialization failures and deadlocks; InterfaceError is
    # a connection already closed on our side.
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def is_transient(exc: BaseException) -> bool:
    """True when the store may take the same work again after a reconnect and a wait."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and is_transient(exc.orig)
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(marker in message for marker in _SQLITE_TRANSIENT)
    return _psycopg_transient(exc)


def reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump."""
    if isinstance(exc, StoreUnavailable):
        return exc.message
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def unavailable(exc: BaseException, retry_after: float = 1.0) -> StoreUnavailable:
    """The typed error a transient fault becomes for callers (and a 503 for clients)."""
    if isinstance(exc, StoreUnavailable):
        return exc
    return StoreUnavailable(f"the store is unavailable: {reason(exc)}", retry_after=retry_after)


STEP_RETRY_SECONDS = 10.0  # how long one store step outside the journal keeps trying


def retrying(work: Callable[[], T], *, within: float = STEP_RETRY_SECONDS) -> T:
    """Run one short store step (a transaction of its own), again on a fresh connection
    after a transient fault, with the shared backoff, for at most `within` seconds; then
    raise StoreUnavailable. A permanent fault is raised at once.

    The step must be safe to run again after a fault whose commit's fate is unknown (a
    connection terminated during COMMIT): callers make it idempotent (see store/limits.py).
    Runs on the calling thread: call it from a worker thread, never the event loop.
    """
    deadline = time.monotonic() + within
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            pause = backoff_delay(attempt, BACKOFF_BASE, BACKOFF_CAP)
            if time.monotonic() + pause > deadline:
                raise unavailable(exc) from exc
            log.warning("store: %s; trying again (attempt %d)", reason(exc), attempt + 1)
            time.sleep(pause)
