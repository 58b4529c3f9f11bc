"""The CLI drives a run tree: `steward run triage.yaml --with desk.yaml` delegates to the
specialist, whose $330 refund waits for a person; `steward approvals approve` resumes the
root (rebuilt, with the specialist, from the versions on record) and the tree completes."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
from test_tree_crash import LARGE_REFUND, TRIAGE
from typer.testing import CliRunner, Result

from steward.cli.main import app
from steward.demo.tools import SYSTEMS_ENV
from steward.store import Database
from steward.store.runs import run_tree
from steward.testing.served import crash_desk_spec, refunds_by_run


def steward(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert result.exit_code == 0, result.output
    return result


def test_run_with_a_specialist_then_approve_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    monkeypatch.setenv("STEWARD_DB", url)
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    (tmp_path / "triage.yaml").write_text(TRIAGE)
    (tmp_path / "desk.yaml").write_text(crash_desk_spec(max_concurrent_runs=2))
    steward("db", "init")
    ops = steward("keys", "create", "--name", "ops", "--role", "admin").stdout.split()[-1]
    rita = steward("keys", "create", "--name", "rita", "--role", "reviewer").stdout.split()[-1]

    started = steward("run", "triage.yaml", "--with", "desk.yaml", "-i", LARGE_REFUND,
                      "--key", ops, "--json")  # fmt: skip
    root = json.loads(started.stdout)
    assert root["status"] == "waiting", root
    [approval] = json.loads(steward("approvals", "list", "--json").stdout)
    steward("approvals", "approve", approval["id"], "--key", rita)

    db = Database.open(url)
    try:
        tree = run_tree(db, root["run_id"])
        assert [(r.agent, r.status) for r in tree] == [
            ("triage", "succeeded"),
            ("support-desk", "succeeded"),
        ]
        assert refunds_by_run(tmp_path / "systems.db")[tree[1].id] == 1
    finally:
        db.close()


def test_runs_show_says_who_delegated_and_what_ended_a_run() -> None:
    from steward.cli.run_details import detail
    from steward.core.events import RunEnding, RunStarted, RunStatus, ToolSucceeded

    started = RunStarted("orders", "v1", "hi", parent_run_id="run_a", root_run_id="run_r", hop=2)
    assert detail(started) == "agent orders, delegated by run run_a (hop 2 of tree run_r)"
    ending = RunEnding(RunStatus.SUCCEEDED, "done")
    handed = ToolSucceeded("k", "handoff.orders", {"answer": "done"}, 1.0, 1, ending=ending)
    assert detail(handed).endswith("; it ends the run succeeded")


def test_runs_cancel_of_a_specialist_cancels_its_waiting_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`steward runs cancel` on a run below the root cancels the whole tree and its
    pending request, as the server does (a tree is driven from its root)."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    monkeypatch.setenv("STEWARD_DB", url)
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    (tmp_path / "triage.yaml").write_text(TRIAGE)
    (tmp_path / "desk.yaml").write_text(crash_desk_spec(max_concurrent_runs=2))
    steward("db", "init")
    ops = steward("keys", "create", "--name", "ops", "--role", "admin").stdout.split()[-1]
    started = steward("run", "triage.yaml", "--with", "desk.yaml", "-i", LARGE_REFUND,
                      "--key", ops, "--json")  # fmt: skip
    root = json.loads(started.stdout)["run_id"]
    db = Database.open(url)
    try:
        child = run_tree(db, root)[1].id
        steward("runs", "cancel", child, "--reason", "customer withdrew", "--key", ops)
        assert [r.status for r in run_tree(db, root)] == ["cancelled", "cancelled"]
        assert json.loads(steward("approvals", "list", "--json").stdout) == []
    finally:
        db.close()
