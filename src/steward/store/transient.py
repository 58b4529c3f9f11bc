"""Which store errors are transient: the one place that tells a fault another attempt on
a fresh connection may get past (a lock held elsewhere, a dropped or terminated
connection, a database restarting, a file that cannot be opened now) from a permanent
one (a bug, a constraint violation, a missing table), which must fail closed.

Errors arrive raw from the DBAPI (the journal writes through the driver's cursor) or
wrapped by SQLAlchemy; both are classified here.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from steward.core.errors import StoreUnavailable

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
