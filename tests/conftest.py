"""Shared fixtures: databases (SQLite always; PostgreSQL when configured), journals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    with postgres_schema(_postgres_or_skip()) as url:
        db = Database.open(url)
        try:
            yield db
        finally:
            db.close()


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
