"""Shared fixtures: databases (SQLite always; PostgreSQL when configured), journals."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from steward.store import Database, Journal

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


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    base = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    db = Database.open(f"{base}{separator}options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.close()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


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
