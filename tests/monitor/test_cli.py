"""`steward monitors show AGENT [--json]` over a store the drift monitor wrote."""

from __future__ import annotations

import json
import random
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from steward.cli.main import app
from steward.monitor import DriftMonitor
from steward.store import Database, Journal

from .streams import Clock, monitors, one_run


def steward(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(result.exception)))
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "250")
    db_url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(db_url, create=True)
    journal = Journal(db)
    monitor = DriftMonitor(db, journal, monitors())
    clock, rng = Clock(), random.Random(9)
    for _ in range(50):
        one_run(journal, clock, rng)
    for _ in range(40):
        one_run(journal, clock, rng, version="v2")
    for _ in range(30):
        one_run(journal, clock, rng, version="v2", latency=5.0)
    journal.close()
    monitor.close()
    db.close()
    return db_url


def test_show_lists_each_metric_by_version_and_the_alarm(url: str) -> None:
    out = steward("monitors", "show", "desk", "--db", url).output
    latency = [line for line in out.splitlines() if "latency" in line and "cusum" in line]
    assert len(latency) == 2 and "in control" in latency[0] and "ALARM" in latency[1]
    assert "steward agents rollback desk --label production" in out


def test_show_json_has_the_series_and_alarms(url: str) -> None:
    data = json.loads(steward("monitors", "show", "desk", "--db", url, "--json").output)
    metrics = {m["metric"]: m for m in data["metrics"]}
    segments = metrics["latency"]["segments"]
    assert [s["version"] for s in segments] == ["v1", "v2"]
    assert segments[1]["previous_version"] == "v1" and segments[1]["alarms"] == 1
    assert segments[1]["points"] and segments[1]["limit"] > 0
    alarm = next(a for a in data["alarms"] if a["metric"] == "latency")
    assert alarm["direction"] == "up" and alarm["rollback"].startswith("steward agents rollback")
    assert alarm["ts"].endswith("Z") and segments[0]["first_seen"].startswith("1970-01-12T")


def test_an_agent_without_monitors_is_not_found(url: str) -> None:
    result = steward("monitors", "show", "nobody", "--db", url, code=3)
    assert "no drift monitors on record for agent 'nobody'" in result.output


def test_only_an_alarm_on_the_latest_version_marks_the_agent(url: str) -> None:
    from steward.monitor import agent_monitors

    db = Database.open(url)
    try:
        view = agent_monitors(db, "desk")
        assert view.latest_version == "v2" and view.alarmed
        journal = Journal(db)  # a v3 starts: v2's alarm is history
        clock, rng = Clock(now=2_000_000.0), random.Random(10)
        monitor = DriftMonitor(db, journal, monitors())
        monitor.load()
        one_run(journal, clock, rng, version="v3")
        journal.close()
        monitor.close()
        view = agent_monitors(db, "desk")
        assert view.latest_version == "v3" and not view.alarmed and view.alarms
    finally:
        db.close()
