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


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    tokens = issue_keys(db)
    app = create_app(url, load_agents([DEMO_SPEC]))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client, db, tokens)
    db.close()
