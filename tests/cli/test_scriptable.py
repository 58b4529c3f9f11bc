"""A scriptable CLI: --json on every list/show/report command (shapes as documented in
the README), RFC 3339 times, --version, distinct exit codes (steward.cli.exits), choices
validated, and `--help` without the heavy modules. The database the read-only tests share
is filled once per module by `steward demo --limit 30`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from steward import __version__
from steward.cli.exits import EPILOG, ExitCode
from steward.cli.main import app
from steward.demo import tools as demo_tools

DEMO_SPEC = str(Path(demo_tools.__file__).with_name("support_agent.yaml"))
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RUN_KEYS = ["id", "agent", "agent_version", "status", "input", "output", "confidence",
            "reason_code", "reason", "steps", "tags", "created_at", "updated_at", "finished_at",
            "label", "arm", "parent_run_id", "root_run_id", "hop"]  # fmt: skip
APPROVAL_KEYS = ["id", "run_id", "agent", "tool", "arguments", "status", "reason",
                 "requested_at", "expires_at", "decided_by", "comment", "used"]  # fmt: skip


def invoke(env: dict[str, str], *args: str, code: int = 0) -> Result:
    """The CLI in-process with `env`; it must exit with `code` and never raise."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert "Traceback" not in result.output
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def as_json(env: dict[str, str], *args: str, code: int = 0) -> Any:
    return json.loads(invoke(env, *args, "--json", code=code).stdout)


def is_time(value: object) -> bool:
    return isinstance(value, str) and RFC3339.match(value) is not None


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("demo")
    env = {"STEWARD_DB": f"sqlite:///{home / 'steward.db'}",
           "STEWARD_DEMO_SYSTEMS": str(home / "systems.db"), "STEWARD_TELEMETRY": "off",
           "COLUMNS": "300"}  # fmt: skip
    saved = os.getcwd()
    os.chdir(home)
    try:
        invoke(env, "demo", "--limit", "30")
        yield env
    finally:
        os.chdir(saved)


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    return {"STEWARD_DB": f"sqlite:///{tmp_path / 'steward.db'}",
            "STEWARD_DEMO_SYSTEMS": str(tmp_path / "systems.db"), "STEWARD_TELEMETRY": "off",
            "COLUMNS": "300"}  # fmt: skip


# --- version, help, exit codes ---------------------------------------------------------------


def test_version(fresh_env: dict[str, str]) -> None:
    assert invoke(fresh_env, "--version").stdout == f"steward {__version__}\n"


def test_help_documents_the_exit_codes(fresh_env: dict[str, str]) -> None:
    shown = " ".join(invoke(fresh_env, "--help").stdout.split())
    assert " ".join(EPILOG.split()) in shown
    for code in ExitCode:
        assert f"{int(code)} " in EPILOG, code


HEAVY = ("sqlalchemy", "alembic", "uvicorn", "fastapi", "bpe_openai", "tiktoken", "httpx",
         "steward.runtime", "steward.store.database", "steward.server", "steward.models")  # fmt: skip


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["runs", "--help"]])
def test_help_and_version_do_not_import_the_heavy_modules(args: list[str]) -> None:
    """`steward --help` stays fast by importing only what it shows (the timing is in
    benchmarks/bench_cli_startup.py); this guards the cause: no store, runtime or model."""
    probe = (
        "import sys\nfrom steward.cli.main import main\n"
        f"sys.argv = ['steward', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "LOADED []", done.stdout[-400:]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["runs", "list", "--status", "waitin"],
                     "'waitin' is not one of 'queued', 'running', 'waiting'", id="runs-status"),
        pytest.param(["approvals", "list", "--status", "open"],
                     "'open' is not one of 'pending', 'approved', 'rejected'", id="approvals-status"),
        pytest.param(["keys", "create", "--name", "x", "--role", "root"],
                     "'root' is not one of 'admin', 'reviewer', 'viewer', 'agent'", id="role"),
        pytest.param(["agents", "mode", "x", "wild"],
                     "'wild' is not one of 'advisory', 'supervised', 'autonomous'", id="mode"),
        pytest.param(["explain", DEMO_SPEC, "lookup_order", "--mode", "wild"],
                     "'wild' is not one of 'advisory', 'supervised', 'autonomous'", id="explain"),
    ],
)  # fmt: skip
def test_choices_are_validated_with_the_valid_ones_listed(
    fresh_env: dict[str, str], args: list[str], says: str
) -> None:
    result = invoke(fresh_env, *args, code=ExitCode.USAGE)
    assert says in " ".join(result.output.split())


def test_exit_codes_by_kind_of_failure(fresh_env: dict[str, str], demo_env: dict[str, str]) -> None:
    assert (
        "no database at"
        in invoke(fresh_env, "runs", "list", code=ExitCode.STORE_UNAVAILABLE).output
    )
    assert (
        "no run with id"
        in invoke(demo_env, "runs", "show", "run_nope", code=ExitCode.NOT_FOUND).output
    )
    invoke(demo_env, "approvals", "approve", "apr_nope", "--key", "stw_x", code=ExitCode.DENIED)
    invoke(fresh_env, "validate", "missing.yaml", code=ExitCode.NOT_FOUND)
    invoke(fresh_env, "explain", DEMO_SPEC, "lookup_order", "--args", "[", code=ExitCode.USAGE)
    invoke(fresh_env, "runs", "list", "--limit", "0", code=ExitCode.USAGE)
    invoke(fresh_env, "explain", DEMO_SPEC, "delete_customer_data", code=ExitCode.DENIED)
    invoke(fresh_env, "explain", DEMO_SPEC, "lookup_order", "--args", '{"order_id": "10001"}')
    # review is not a denial: the call may still run once a person approves
    invoke(fresh_env, "explain", DEMO_SPEC, "issue_refund",
           "--args", '{"order_id": "10001", "amount_usd": 70, "reason": "late"}')  # fmt: skip


# --- --json shapes ---------------------------------------------------------------------------


def test_runs_list_and_show_json(demo_env: dict[str, str]) -> None:
    runs = as_json(demo_env, "runs", "list", "--limit", "50")
    assert isinstance(runs, list) and len(runs) == 30
    for run in runs:
        assert list(run) == RUN_KEYS
        assert is_time(run["created_at"]) and is_time(run["updated_at"])
        assert run["finished_at"] is None or is_time(run["finished_at"])
    waiting = as_json(demo_env, "runs", "list", "--status", "waiting")
    assert waiting and {r["status"] for r in waiting} == {"waiting"}
    shown = as_json(demo_env, "runs", "show", waiting[0]["id"])
    assert list(shown) == ["run", "events"] and shown["run"] == waiting[0]
    assert shown["events"][0]["type"] == "run.started"
    for event in shown["events"]:
        assert list(event) == ["id", "type", "ts", "data"] and is_time(event["ts"])


def test_waiting_runs_count_their_steps(demo_env: dict[str, str]) -> None:
    """A run parked on an approval has taken model turns: `steps` says how many."""
    waiting = as_json(demo_env, "runs", "list", "--status", "waiting")
    assert waiting and all(r["steps"] >= 1 for r in waiting), [r["steps"] for r in waiting]
    table = invoke(demo_env, "runs", "list", "--status", "waiting").stdout
    assert f" {waiting[0]['steps']} " in table


def test_approvals_list_json(demo_env: dict[str, str]) -> None:
    pending = as_json(demo_env, "approvals", "list")
    assert pending and all(list(a) == APPROVAL_KEYS for a in pending)
    assert all(a["status"] == "pending" and is_time(a["expires_at"]) for a in pending)
    assert as_json(demo_env, "approvals", "list", "--status", "rejected") == []
    assert len(as_json(demo_env, "approvals", "list", "--status", "all")) >= len(pending)


def test_agents_list_shows_agents_that_ran(demo_env: dict[str, str]) -> None:
    """After the demo (no state ever changed) the agent is listed, enabled and supervised."""
    [agent] = as_json(demo_env, "agents", "list")
    assert agent["name"] == "support-desk" and agent["enabled"] is True
    assert agent["mode"] == "supervised" and agent["state_version"] == 0
    assert agent["latest_version"] and is_time(agent["latest_version_at"])
    assert "support-desk" in invoke(demo_env, "agents", "list").stdout


def test_reports_json(demo_env: dict[str, str]) -> None:
    stats = as_json(demo_env, "stats", "support-desk")
    assert stats["agent"] == "support-desk" and stats["transactions"] > 0
    assert set(stats["latency_ms"]["run"]) == {"n", "p50", "p95", "p99"}
    assert set(stats["stage"]) == {"name", "why"}
    costs = as_json(demo_env, "costs")
    assert set(costs) == {"days", "agent", "rows", "agents"}
    assert costs["agents"][0]["agent"] == "support-desk"
    verified = as_json(demo_env, "audit", "verify")
    assert verified["ok"] is True and verified["checked"] > 0 and verified["problems"] == []
    head = as_json(demo_env, "audit", "head")
    assert head["last_id"] == verified["checked"] and head["last_hash"] == verified["head_hash"]


def test_stats_no_longer_speaks_of_seeds(demo_env: dict[str, str]) -> None:
    assert "seed" not in invoke(demo_env, "stats", "--help").stdout
    assert "seed" not in invoke(demo_env, "stats", "support-desk").stdout


def test_keys_json_and_audit_export_times(fresh_env: dict[str, str]) -> None:
    created = as_json(fresh_env, "keys", "create", "--name", "ana", "--role", "reviewer")
    assert created["token"].startswith("stw_") and is_time(created["created_at"])
    [listed] = as_json(fresh_env, "keys", "list")
    assert listed == {k: v for k, v in created.items() if k != "token"}
    exported = invoke(fresh_env, "audit", "export", "--jsonl").stdout.splitlines()
    first = json.loads(exported[0])
    assert list(first) == ["id", "run_id", "type", "ts", "ts_unix", "event", "prev_hash", "hash"]
    assert is_time(first["ts"]) and isinstance(first["ts_unix"], float)


def test_explain_and_validate_json(fresh_env: dict[str, str]) -> None:
    args = '{"order_id": "10001", "amount_usd": 700, "reason": "x"}'
    denied = as_json(fresh_env, "explain", DEMO_SPEC, "issue_refund", "--args", args,
                     code=ExitCode.DENIED)  # fmt: skip
    assert denied["verdict"] == "deny" and denied["rules"] == ["condition.refund-over-500"]
    assert (
        denied["stage"] == "policy" and denied["reasons"][0]["code"] == "condition.refund-over-500"
    )
    checked = as_json(fresh_env, "validate", DEMO_SPEC)
    assert checked["agent"] == "support-desk" and checked["tools"] > 0


def test_explain_applies_the_autonomy_mode(fresh_env: dict[str, str]) -> None:
    """The same call, decided by the gate's autonomy stage after policy."""
    args = '{"order_id": "10001", "amount_usd": 20, "reason": "late"}'
    supervised = as_json(fresh_env, "explain", DEMO_SPEC, "issue_refund", "--args", args)
    advisory = as_json(fresh_env, "explain", DEMO_SPEC, "issue_refund", "--args", args,
                       "--mode", "advisory")  # fmt: skip
    assert supervised["verdict"] == "allow" and supervised["stage"] == "policy"
    assert advisory["verdict"] == "review" and advisory["stage"] == "autonomy"


def test_decide_json_reports_the_decision_and_the_resumed_run(tmp_path: Path) -> None:
    home = tmp_path
    env = {"STEWARD_DB": f"sqlite:///{home / 'steward.db'}",
           "STEWARD_DEMO_SYSTEMS": str(home / "systems.db"), "STEWARD_TELEMETRY": "off"}  # fmt: skip
    token = as_json(env, "keys", "create", "--name", "rev", "--role", "reviewer")["token"]
    started = as_json(env, "run", DEMO_SPEC, "-i",
                      "Order #10114 arrived without the ultralight tent. Please refund $330 for it.")  # fmt: skip
    assert started["status"] == "waiting" and started["steps"] >= 1
    [approval] = as_json(env, "approvals", "list")
    decided = as_json(env, "approvals", "approve", approval["id"], "--key", token)
    assert decided["approval"]["status"] == "approved"
    assert decided["approval"]["decided_by"] == "reviewer:rev"
    assert [r["status"] for r in decided["resumed"]] == ["succeeded"]


def test_serve_banner_counts_the_keys(
    fresh_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    assert "no keys yet: create one" in invoke(fresh_env, "serve").stdout
    invoke(fresh_env, "keys", "create", "--name", "ops", "--role", "admin")
    banner = invoke(fresh_env, "serve").stdout
    assert "create" not in banner and "1 active key(s)" in banner
