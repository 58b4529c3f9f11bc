"""Open a database by URL: SQLite (WAL) by default, PostgreSQL through the same interface.

Two engines share one database: a writer whose SQLite transactions start with
`BEGIN IMMEDIATE` (so the chain head is read and advanced under the write lock, also
across processes), and a reader whose transactions never block writers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from steward.core.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_URL = "sqlite:///.steward/steward.db"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships migrations
        raise StoreError("no migrations found")
    return head


def _sqlite_engine(url: str, *, immediate: bool, synchronous: str) -> Engine:
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Engines for one database URL. Use `Database.open()`."""

    def __init__(self, url: str, writer: Engine, reader: Engine) -> None:
        self.url = url
        self.writer = writer
        self.reader = reader
        self.dialect = writer.dialect.name

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
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                path = Path(database)
                if not path.exists():
                    if not create:
                        raise StoreError(
                            f"no database at {path} (run `steward demo` or `steward db init`)"
                        )
                    path.parent.mkdir(parents=True, exist_ok=True)
            writer = _sqlite_engine(url, immediate=True, synchronous=synchronous)
            reader = _sqlite_engine(url, immediate=False, synchronous=synchronous)
        else:
            try:
                writer = create_engine(url, pool_pre_ping=True)
            except (ArgumentError, ImportError, SQLAlchemyError) as exc:
                raise StoreError(f"cannot use database {url!r}: {exc}") from None
            reader = writer
        db = cls(url, writer, reader)
        try:
            db.migrate()
        except OperationalError as exc:
            reason = (str(exc.orig).strip() or "unreachable").splitlines()[0]
            raise StoreError(
                f"cannot open database {parsed.render_as_string()}: {reason}"
            ) from None
        return db

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
