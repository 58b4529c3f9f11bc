"""`steward runs list --search --tag --since --until`: the store's run filter from the
command line; bad values are usage errors naming the option."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli.main import app
from steward.core.events import RunStarted
from steward.store import Database, Journal


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    monkeypatch.setenv("STEWARD_DB", url)
    db = Database.open(url)
    journal = Journal(db)
    now = time.time()
    try:
        journal.append("r_old", RunStarted("desk", "v1", "refund my old order", {"tenant": "acme"}),
                       ts=now - 3 * 86400)  # fmt: skip
        journal.append("r_new", RunStarted("desk", "v1", "refund the blender", {"tenant": "acme"}),
                       ts=now - 60)  # fmt: skip
        journal.append("r_other", RunStarted("desk", "v1", "where is my parcel", {"tenant": "hooli"}),
                       ts=now - 30)  # fmt: skip
        journal.flush_sync()
    finally:
        journal.close()
        db.close()
    return CliRunner()


def _ids(runner: CliRunner, *args: str) -> list[str]:
    result = runner.invoke(app, ["runs", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return sorted(r["id"] for r in json.loads(result.output))


def test_runs_list_filters(runner: CliRunner) -> None:
    assert _ids(runner, "--search", "refund") == ["r_new", "r_old"]
    assert _ids(runner, "--search", "refund", "--since", "24h") == ["r_new"]
    assert _ids(runner, "--tag", "tenant=hooli") == ["r_other"]
    assert _ids(runner, "--until", "1d") == ["r_old"]
    assert _ids(runner, "--since", "2000-01-01", "--tag", "tenant=acme") == ["r_new", "r_old"]


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--tag", "tenant"], "--tag"), (["--since", "soon"], "--since"),
     (["--since", "1h", "--until", "2h"], "--until")],
)  # fmt: skip
def test_bad_filters_are_usage_errors(runner: CliRunner, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["runs", "list", *args])
    assert result.exit_code == 2 and named in result.output, result.output
