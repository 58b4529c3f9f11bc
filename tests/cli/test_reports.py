"""`steward costs` and `steward stats`: figures from the store, and the maturity stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli.main import app
from steward.store.stats import AgentStats


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    monkeypatch.setenv("STEWARD_DEMO_SYSTEMS", str(tmp_path / "systems.db"))
    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--limit", "40"]).exit_code == 0
    return runner


def test_costs_report_by_agent_model_and_day(filled: CliRunner) -> None:
    result = filled.invoke(app, ["costs"])
    assert result.exit_code == 0, result.output
    assert "support-desk" in result.output and "rules" in result.output
    assert "cost per transaction $0.000000" in result.output


def test_stats_reports_latency_outcomes_and_stage(filled: CliRunner) -> None:
    result = filled.invoke(app, ["stats", "support-desk", "--window", "1h"])
    assert result.exit_code == 0, result.output
    for expected in ("40 transaction(s)", "tool lookup_order", "automation rate", "escalation rate",
                     "availability", "100.0%", "maturity stage: unplaced"):  # fmt: skip
        assert expected in result.output
    unknown = filled.invoke(app, ["stats", "nobody"])
    assert "0 transaction(s)" in unknown.output and "maturity stage: none" in unknown.output


def test_stats_rejects_a_bad_window(filled: CliRunner) -> None:
    result = filled.invoke(app, ["stats", "support-desk", "--window", "soon"])
    assert result.exit_code == 2 and "expected a number and a unit" in result.output


@pytest.mark.parametrize(
    ("accuracy", "escalated", "stage"),
    [
        (None, 0, "unplaced"),
        (0.80, 0, "below proof of concept"),
        (0.90, 0, "proof of concept"),
        (0.95, 20, "proof of concept"),  # 20% escalation is too many for limited production
        (0.95, 5, "limited production"),
    ],
)
def test_maturity_stage_against_the_seed_targets(
    accuracy: float | None, escalated: int, stage: str
) -> None:
    figures = AgentStats(
        "a",
        3600,
        statuses={"succeeded": 100 - escalated, "escalated": escalated},
        accuracy=accuracy,
    )
    assert figures.stage()[0] == stage
