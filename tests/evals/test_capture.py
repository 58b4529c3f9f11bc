"""`steward eval capture`: incorrect feedback (with its correction) and a sample of
production runs become candidate cases, in a suite file a person reviews, whose recorded
fixtures replay the runs without touching any system."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from steward.cli.main import app
from steward.demo.job import demo_spec, run_demo
from steward.evals.capture import capture_candidates, in_sample, render_candidates
from steward.evals.load import load_suite_text
from steward.evals.run import evaluate
from steward.store import Database
from steward.store.feedback import give_feedback


def _production(db: Database, tmp_path: Path) -> list[str]:
    report = asyncio.run(run_demo(db, systems=tmp_path / "systems.db", limit=12))
    return [r.run_id for _, r in report.results if r.status.value in {"succeeded", "escalated"}]


def test_incorrect_feedback_and_a_sample_become_replayable_candidates(
    sqlite_db: Database, tmp_path: Path
) -> None:
    finished = _production(sqlite_db, tmp_path)
    flagged = finished[0]
    give_feedback(sqlite_db, flagged, verdict="incorrect", by="reviewer:kim",
                  correction="The refund needs a manager's approval.")  # fmt: skip
    give_feedback(sqlite_db, finished[1], verdict="correct", by="reviewer:kim")
    only_feedback = capture_candidates(sqlite_db, "support-desk")
    assert [(c.source, c.run_id, c.correction) for c in only_feedback] == [
        ("feedback", flagged, "The refund needs a manager's approval.")
    ]
    everything = capture_candidates(sqlite_db, "support-desk", sample=1.0)
    assert {c.run_id for c in everything} == set(finished)
    text = render_candidates("support-desk", everything)
    assert "REVIEW EACH CASE" in text
    suite = load_suite_text(text, "candidates.yaml")
    assert all(not case.required for case in suite.cases)
    replay = asyncio.run(evaluate(suite, demo_spec()))
    outcomes = {c.id: c.outcome for c in replay.cases}
    assert outcomes.pop(f"feedback-{flagged}") == "fail"  # the correction is not what it says
    assert set(outcomes.values()) == {"pass"}, [c.problems() for c in replay.cases if not c.passed]


def test_the_sample_is_deterministic_and_near_its_share() -> None:
    ids = [f"run_{i}" for i in range(10_000)]
    picked = [i for i in ids if in_sample(i, 0.2)]
    assert picked == [i for i in ids if in_sample(i, 0.2)]
    assert 0.18 < len(picked) / len(ids) < 0.22


def test_cli_capture_writes_the_file_or_says_there_is_nothing(
    sqlite_db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "candidates.yaml"
    args = ["eval", "capture", "support-desk", "--out", str(out), "--db", sqlite_db.url]
    nothing = CliRunner().invoke(app, args)
    assert nothing.exit_code == 3 and not out.exists()
    _production(sqlite_db, tmp_path)
    done = CliRunner().invoke(app, [*args, "--sample", "0.5"])
    assert done.exit_code == 0, done.output
    assert "sampled; review them" in done.output
    load_suite_text(out.read_text(), str(out))
