"""`steward approvals answer` and `steward runs cancel`, run in tmp_path against SQLite."""

from __future__ import annotations

import contextlib
import sqlite3
import traceback
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from steward.cli.exits import ExitCode
from steward.cli.main import app

SPEC = """
name: asker
model: rules
tools: [ask_human]
rules:
  intents:
    - name: colour
      match: ["paint"]
      plan:
        - - tool: ask_human
            args: {question: "Which colour?"}
      answer: "Painting it {results.ask_human.answer}."
      on_denied: "No colour: {denial.message}"
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    monkeypatch.setenv("COLUMNS", "300")
    path = tmp_path / "asker.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def dana(spec: Path) -> str:
    """A reviewer's key (its token), for the commands that act as someone (`--key`)."""
    token = steward("keys", "create", "--name", "dana", "--role", "reviewer").stdout
    return token.strip().splitlines()[-1]


def steward(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert result.exit_code == code, result.output
    return result


def sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect("file:steward.db?mode=rw", uri=True)) as connection:
        return connection.execute(statement, params).fetchall()


def pending() -> tuple[str, str]:
    [(approval_id, run_id)] = sql("SELECT id, run_id FROM approvals WHERE status = 'pending'")
    return approval_id, run_id


def test_answer_a_question_and_the_run_finishes_with_it(spec: Path, dana: str) -> None:
    steward("db", "init")
    assert "waiting" in steward("run", str(spec), "-i", "paint the fence").stdout
    approval_id, run_id = pending()
    listed = steward("approvals", "list").stdout
    assert "ask_human" in listed and "Which colour?" in listed
    result = steward("approvals", "answer", approval_id, "dark green", "--key", dana)
    assert f"approval {approval_id} approved by reviewer:dana" in result.stdout
    assert "Painting it dark green." in result.stdout
    assert sql("SELECT status, output FROM runs WHERE id = ?", run_id) == [
        ("succeeded", "Painting it dark green.")
    ]
    again = steward("approvals", "answer", approval_id, "blue", "--key", dana, code=ExitCode.FAILED)
    assert f"approval {approval_id} is already approved" in again.stderr


def test_answer_refuses_an_approval_that_is_not_a_question(spec: Path, dana: str) -> None:
    steward("db", "init")
    steward("run", str(spec), "-i", "paint the fence")
    approval_id, _ = pending()
    with contextlib.closing(sqlite3.connect("steward.db")) as connection:
        connection.execute("UPDATE approvals SET tool = 'transfer' WHERE id = ?", (approval_id,))
        connection.commit()
    result = steward("approvals", "answer", approval_id, "green", "--key", dana, code=2)
    assert "is for a call of 'transfer', not a question" in result.stderr
    unknown = steward(
        "approvals", "answer", "apr_nope", "x", "--key", dana, code=ExitCode.NOT_FOUND
    )
    assert unknown.stderr.count("no approval")


def test_validate_does_not_call_ask_human_forbidden(spec: Path) -> None:
    result = steward("validate", str(spec))
    assert "ok" in result.stdout and "forbidden" not in result.stdout
    explained = steward("explain", str(spec), "ask_human", "--args", '{"question": "Why?"}')
    assert "review" in explained.stdout and "tier.asks_human" in explained.stdout


def test_cancel_a_waiting_run(spec: Path, dana: str) -> None:
    steward("db", "init")
    steward("run", str(spec), "-i", "paint the fence")
    approval_id, run_id = pending()
    result = steward("runs", "cancel", run_id, "--reason", "fence sold", "--key", dana)
    assert f"run {run_id} cancelled" in result.stdout
    assert "cancelled by reviewer:dana: fence sold" in result.stdout
    assert sql("SELECT status, reason_code FROM runs WHERE id = ?", run_id) == [
        ("cancelled", "run.cancelled")
    ]
    assert sql("SELECT status FROM approvals WHERE id = ?", approval_id) == [("cancelled",)]
    late = steward("approvals", "answer", approval_id, "green", "--key", dana, code=ExitCode.FAILED)
    assert f"approval {approval_id} is already cancelled" in late.stderr
    twice = steward(
        "runs", "cancel", run_id, "--reason", "again", "--key", dana, code=ExitCode.FAILED
    )
    assert f"run {run_id} already cancelled" in twice.stderr
    resumed = steward("runs", "resume", run_id)
    assert f"run {run_id} cancelled" in resumed.stdout
    shown = steward("runs", "show", run_id).stdout
    assert "approval.decided" in shown and "cancelled run.cancelled" in shown
    assert "verified 9 events" in steward("audit", "verify").stdout  # key.created, then the run
    unknown = steward(
        "runs", "cancel", "run_nope", "--reason", "x", "--key", dana, code=ExitCode.NOT_FOUND
    )
    assert "no run with id 'run_nope'" in unknown.stderr
