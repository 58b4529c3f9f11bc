"""Shared fixtures: databases (SQLite always; PostgreSQL when configured), journals."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from steward.store import Database, Journal
from steward.testing.postgres import postgres_schema

POSTGRES_URL = os.environ.get("STEWARD_TEST_POSTGRES_URL", "")


def _postgres_or_skip() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if os.environ.get("CI"):
        pytest.fail("STEWARD_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests")
    pytest.skip("PostgreSQL tests skipped: set STEWARD_TEST_POSTGRES_URL to run them")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'steward.db'}")
    yield db
    db.close()


def _postgres_schema(application_name: str = "") -> Iterator[Database]:
    """A fresh schema of the test server, dropped afterwards."""
    with postgres_schema(_postgres_or_skip()) as url:
        named = f"&application_name={application_name}" if application_name else ""
        db = Database.open(f"{url}{named}")
        try:
            yield db
        finally:
            db.close()


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    yield from _postgres_schema()


@dataclass
class NamedPostgres:
    """A PostgreSQL database whose connections carry a unique application_name, so a
    test can find exactly them in pg_stat_activity and terminate them."""

    db: Database
    application_name: str

    def terminate_backends(self) -> int:
        """pg_terminate_backend every connection with this application_name (any
        process's: a served subprocess's too); returns how many were terminated."""
        admin = create_engine(POSTGRES_URL)
        try:
            with admin.begin() as connection:
                killed = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self.application_name},
                ).all()
        finally:
            admin.dispose()
        return len(killed)


@pytest.fixture
def postgres_named() -> Iterator[NamedPostgres]:
    name = f"steward-test-{uuid.uuid4().hex[:12]}"
    for db in _postgres_schema(name):
        yield NamedPostgres(db, name)


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """Runs the test on both backends."""
    name = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    db: Database = request.getfixturevalue(name)
    return db


@pytest.fixture
def journal(any_db: Database) -> Iterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()
