"""A served app over a fresh SQLite database with the demo agent, and a key per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steward.cli.serve import DEMO_SPEC
from steward.demo.tools import SYSTEMS_ENV
from steward.server import create_app, load_agents
from steward.store import Database

from .served import Served, issue_keys


def _serve(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    tokens = issue_keys(db)
    app = create_app(db.url, load_agents([DEMO_SPEC]))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client, db, tokens)


@pytest.fixture
def served(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Served]:
    """The app over SQLite."""
    yield from _serve(sqlite_db, tmp_path, monkeypatch)


@pytest.fixture
def served_any(
    any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Served]:
    """The app over SQLite, then over PostgreSQL."""
    yield from _serve(any_db, tmp_path, monkeypatch)
