"""Open a database by URL: SQLite (WAL) by default, PostgreSQL through the same interface.

Two engines share one database: a writer whose SQLite transactions start with
`BEGIN IMMEDIATE` (so the chain head is read and advanced under the write lock, also
across processes), and a reader whose transactions never block writers.

A SQLite database is the file that was opened: its device and inode are recorded at
open, connections made later never create a file (`mode=rw`), and `identity_problem()`
tells when the path now names another file or none (deleted or replaced under us).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from steward.core.defaults import DEFAULT_DB_URL
from steward.core.errors import StoreError, StoreUnavailable
from steward.store.transient import reason

MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_URL = DEFAULT_DB_URL


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships migrations
        raise StoreError("no migrations found")
    return head


DEFAULT_LOCK_WAIT = 10.0  # seconds a writer waits for SQLite's lock before "database is locked"
IDENTITY_CHECK_SECONDS = 0.05  # the journal's writer stats the SQLite file at most this often
APPLICATION_NAME = "steward"  # PostgreSQL's pg_stat_activity shows whose connections these are


def _sqlite_engine(url: str | URL, *, immediate: bool, synchronous: str) -> Engine:
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(DEFAULT_LOCK_WAIT * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Engines for one database URL. Use `Database.open()`."""

    def __init__(self, url: str, writer: Engine, reader: Engine, path: Path | None = None) -> None:
        self.url = url
        self.writer = writer
        self.reader = reader
        self.dialect = writer.dialect.name
        self.path = path  # the SQLite file, when there is one
        self._identity = _file_identity(path) if path is not None else None
        self._next_check = 0.0  # time.monotonic() of the writer's next identity check

    @classmethod
    def open(
        cls, url: str = DEFAULT_URL, *, create: bool = True, synchronous: str = "NORMAL"
    ) -> Database:
        """Open (and migrate) the database. With create=False a missing SQLite file is an error.

        synchronous=NORMAL in WAL mode survives a process crash with no loss of committed
        transactions; FULL also survives power loss, at a cost per commit.
        """
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(f"not a database URL: {url!r}") from None
        if synchronous not in {"NORMAL", "FULL"}:
            raise StoreError("synchronous must be NORMAL or FULL")
        path: Path | None = None
        engine_url: str | URL = url
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                path = Path(database)
                if not path.exists():
                    if not create:
                        raise StoreUnavailable(
                            f"no database at {path} (run `steward demo` or `steward db init`)"
                        )
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sqlite3.connect(path).close()  # the one place a file is created
                # Later connections open this file or fail: none may create an empty one
                # where a deleted database was.
                engine_url = parsed.set(
                    database=f"file:{quote(str(path))}",
                    query={**parsed.query, "mode": "rw", "uri": "true"},
                )
            writer = _sqlite_engine(engine_url, immediate=True, synchronous=synchronous)
            reader = _sqlite_engine(engine_url, immediate=False, synchronous=synchronous)
        else:
            named = (
                {} if "application_name" in parsed.query else {"application_name": APPLICATION_NAME}
            )
            try:
                writer = create_engine(url, pool_pre_ping=True, connect_args=named)
            except (ArgumentError, ImportError, SQLAlchemyError) as exc:
                raise StoreError(f"cannot use database {url!r}: {exc}") from None
            reader = writer
        db = cls(url, writer, reader, path)
        try:
            db.migrate()
        except OperationalError as exc:
            reason = (str(exc.orig).strip() or "unreachable").splitlines()[0]
            raise StoreUnavailable(
                f"cannot open database {parsed.render_as_string()}: {reason}"
            ) from None
        return db

    def identity_problem(self) -> str:
        """Empty while the SQLite path still names the file opened (always, on a server
        database); otherwise why not. One stat: cheap enough for every journal commit."""
        if self.path is None:
            return ""
        try:
            now = _file_identity(self.path)
        except FileNotFoundError:
            return f"the database file {self.path} was deleted while the server had it open"
        except OSError as exc:
            return f"the database file {self.path} cannot be examined: {exc}"
        if now != self._identity:
            return f"the database file {self.path} was replaced by another file"
        return ""

    def commit_check(self) -> str:
        """The writer's check after a commit: `identity_problem()` at most every
        IDENTITY_CHECK_SECONDS. Every commit would be stricter, but a syscall on the
        writer thread hands the GIL over mid-commit: it cost 5-15 µs of a ~130 µs
        commit in an A/B. So commits in the last IDENTITY_CHECK_SECONDS before a file
        was deleted may be acknowledged into it (README, Known limits)."""
        if self.path is None:
            return ""
        now = time.monotonic()
        if now < self._next_check:
            return ""
        self._next_check = now + IDENTITY_CHECK_SECONDS
        return self.identity_problem()

    def probe(self, lock_wait: float = 1.0) -> str:
        """A write round-trip: take the write lock, rewrite the chain head unchanged,
        commit. Empty when it worked on the database that was opened, else why not.
        Waits at most about `lock_wait` seconds for a lock held elsewhere."""
        problem = self.identity_problem()
        if problem:
            return problem
        try:
            with self.writer.connect() as connection:
                raw = connection.connection
                cursor = raw.cursor()
                try:
                    if self.dialect == "sqlite":
                        cursor.execute(f"PRAGMA busy_timeout={int(lock_wait * 1000)}")
                        try:
                            cursor.execute("BEGIN IMMEDIATE")
                            cursor.execute(_TOUCH)
                            raw.commit()
                        finally:
                            cursor.execute(f"PRAGMA busy_timeout={int(DEFAULT_LOCK_WAIT * 1000)}")
                    else:
                        milliseconds = int(lock_wait * 1000)
                        cursor.execute(f"SET LOCAL lock_timeout = {milliseconds}")
                        cursor.execute(f"SET LOCAL statement_timeout = {milliseconds * 2}")
                        cursor.execute(_TOUCH)
                        raw.commit()
                except BaseException:
                    with contextlib.suppress(Exception):  # a dead connection cannot
                        raw.rollback()
                    raise
                finally:
                    cursor.close()
        except Exception as exc:  # readiness reports any failure, it never raises
            return f"the database did not take a write: {reason(exc)}"
        return self.identity_problem()

    def current_revision(self) -> str | None:
        with self.writer.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def migrate(self) -> None:
        """Bring the schema to head with Alembic; a no-op when already there."""
        if self.current_revision() == head_revision():
            return
        config = _alembic_config()
        with self.writer.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


# A write that changes nothing: proves the write lock can be taken and a commit lands.
_TOUCH = "UPDATE chain_head SET last_id = last_id WHERE id = 1"


def _file_identity(path: Path) -> tuple[int, int]:
    found = os.stat(path)
    return found.st_dev, found.st_ino
