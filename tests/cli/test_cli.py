"""The `steward` command line: validate, explain, runs, approvals, audit and the demo (and
its multi-agent mode).

Every invocation runs in tmp_path with STEWARD_DB and STEWARD_DEMO_SYSTEMS pointing there,
so nothing is written in the repository. Errors must be one `error:` line each and a
non-zero exit, never a traceback; a few commands are run as real processes to prove it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import sys
import traceback
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from steward.cli.exits import ExitCode
from steward.cli.main import app
from steward.demo import tools as demo_tools
from steward.store.schema import GENESIS_HASH

DEMO_SPEC = str(Path(demo_tools.__file__).with_name("support_agent.yaml"))
STEWARD = Path(sys.executable).with_name("steward")
ERROR_LINE = re.compile(r"^error: (?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<field>\S+): ")


@dataclass(frozen=True)
class Env:
    db: Path
    systems: Path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "steward.db"
    systems = tmp_path / "support-systems.db"
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{db}")
    monkeypatch.setenv("STEWARD_DEMO_SYSTEMS", str(systems))
    monkeypatch.setenv("COLUMNS", "300")  # wide enough that no id or event name is folded
    return Env(db, systems)


def steward(*args: str, code: int = 0) -> Result:
    """Invoke the CLI in-process; it must exit with `code` and never raise."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    return result


def steward_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, in the current (tmp) directory and environment."""
    return subprocess.run(
        [str(STEWARD), *args], capture_output=True, text=True, timeout=120, check=False
    )


def the_error(stderr: str) -> str:
    """The one `error:` line a failing command prints."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def sql(db: Path, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on an existing SQLite file (mode=rw: never create one)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True)) as connection:
        rows = connection.execute(statement, params).fetchall()
        connection.commit()
    return rows


def pending_approvals(db: Path) -> list[tuple[str, str]]:
    return sql(
        db, "SELECT id, run_id FROM approvals WHERE status = 'pending' ORDER BY requested_at"
    )


def pending_refund(db: Path) -> tuple[str, str]:
    """The oldest pending approval of an `issue_refund` call: (approval id, run id)."""
    return sql(
        db,
        "SELECT id, run_id FROM approvals WHERE status = 'pending' AND tool = 'issue_refund' "
        "ORDER BY requested_at LIMIT 1",
    )[0]


def run_status(db: Path, run_id: str) -> str:
    return sql(db, "SELECT status FROM runs WHERE id = ?", run_id)[0][0]


def refunds_of(env: Env, run_id: str) -> int:
    """Refunds the demo systems recorded for a run (their idempotency key starts with it)."""
    return sql(
        env.systems, "SELECT count(*) FROM refunds WHERE idempotency_key LIKE ?", f"{run_id}:%"
    )[0][0]


def refund(amount: float) -> dict[str, Any]:
    return {"order_id": "10001", "amount_usd": amount, "reason": "customer request"}


def issue_key(name: str, role: str, *more: str) -> str:
    """A key issued through the CLI; returns its token (printed last)."""
    out = steward("keys", "create", "--name", name, "--role", role, *more).stdout
    return out.strip().splitlines()[-1]


@pytest.fixture
def alice(env: Env, monkeypatch: pytest.MonkeyPatch) -> str:
    """A reviewer's key the CLI acts as (STEWARD_API_KEY); returns its audit label."""
    monkeypatch.setenv("STEWARD_API_KEY", issue_key("alice", "reviewer"))
    return "reviewer:alice"


@pytest.fixture
def demo(env: Env) -> Result:
    """A database filled by `steward demo --limit 30` (it leaves several refunds pending)."""
    result = steward("demo", "--limit", "30")
    assert len(pending_approvals(env.db)) >= 2, "the demo should leave approvals to decide"
    return result


# --- validate ------------------------------------------------------------------------------


def test_validate_accepts_the_demo_spec(env: Env) -> None:
    result = steward("validate", DEMO_SPEC)
    assert result.stdout.startswith(f"ok {DEMO_SPEC}: agent support-desk version ")


def test_validate_reports_every_problem_with_file_line_column_and_field(env: Env) -> None:
    Path("bad.yaml").write_text(
        "name: Bad\nmodel: scripted\nlimits:\n  max_steps: 0\n  colour: red\n", encoding="utf-8"
    )
    result = steward("validate", "bad.yaml", code=2)
    found = [ERROR_LINE.match(line) for line in result.stderr.splitlines()]
    assert all(found), result.stderr
    assert [m.group("file", "line", "column", "field") for m in found if m] == [
        ("bad.yaml", "1", "1", "name"),
        ("bad.yaml", "4", "3", "limits.max_steps"),
        ("bad.yaml", "5", "3", "limits.colour"),
    ]
    assert result.stdout == ""


def test_validate_a_missing_file(env: Env) -> None:
    result = steward("validate", "nowhere.yaml", code=ExitCode.NOT_FOUND)
    assert the_error(result.stderr) == "error: nowhere.yaml:0:0: no such file"


# --- explain -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "verdict", "code", "rule"),
    [
        pytest.param(
            "lookup_order",
            {"order_id": "10001"},
            "allow",
            "tier.autonomous",
            "decision_authority.autonomous.lookup_order",
            id="autonomous-tool",
        ),
        pytest.param(
            "issue_refund",
            refund(70),
            "review",
            "tier.requires_human_review",
            "decision_authority.requires_human_review.issue_refund",
            id="refund-70-review",
        ),
        pytest.param(
            "issue_refund",
            refund(700),
            "deny",
            "condition.refund-over-500",
            "condition.refund-over-500",
            id="refund-700-deny",
        ),
        pytest.param(
            "issue_refund",
            refund(20),
            "allow",
            "condition.small-refund",
            "condition.small-refund",
            id="refund-20-allow",
        ),
        pytest.param(
            "delete_customer_data",
            {"email": "ava@example.com"},
            "deny",
            "tool.forbidden",
            "decision_authority.forbidden.delete_customer_data",
            id="forbidden-tool",
        ),
        pytest.param(
            "export_customers", {}, "deny", "tool.unlisted", "default.unlisted", id="unlisted-tool"
        ),
        pytest.param(
            "get_payment_details",
            {"email": "ava@example.com"},
            "deny",
            "data_access.financial",
            "data_access.allow_financial",
            id="financial-data",
        ),
        pytest.param(
            "lookup_order", {"order_id": 10001}, "deny", "args.invalid", None, id="invalid-args"
        ),
    ],
)
def test_explain(
    env: Env, tool: str, args: dict[str, Any], verdict: str, code: str, rule: str | None
) -> None:
    denied = verdict == "deny"
    result = steward("explain", DEMO_SPEC, tool, "--args", json.dumps(args),
                     code=ExitCode.DENIED if denied else ExitCode.OK)  # fmt: skip
    first, *details = result.stdout.splitlines()
    assert first.split()[:2] == [verdict, tool]
    assert any(line.strip().startswith(f"{code}: ") for line in details), result.stdout
    rules = [line.strip() for line in details if line.strip().startswith("rule: ")]
    assert rules == ([f"rule: {rule}"] if rule else [])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(["--args", "{amount: 5"], "--args is not valid JSON", id="args-not-json"),
        pytest.param(["--args", "[1]"], "--args must be a JSON object", id="args-a-list"),
        pytest.param(["--source", "order_id=alien"], "expected ARG=user", id="bad-source"),
    ],
)
def test_explain_rejects_bad_options(env: Env, options: list[str], message: str) -> None:
    result = steward("explain", DEMO_SPEC, "lookup_order", *options, code=2)
    assert message in the_error(result.stderr)
    assert result.stdout == ""


# --- errors against a missing or empty database ---------------------------------------------

DB_COMMANDS = [
    pytest.param(["runs", "list"], id="runs-list"),
    pytest.param(["runs", "show", "run_x"], id="runs-show"),
    pytest.param(["approvals", "list"], id="approvals-list"),
    pytest.param(["approvals", "approve", "apr_x"], id="approvals-approve"),
    pytest.param(["audit", "verify"], id="audit-verify"),
    pytest.param(["audit", "export", "--jsonl"], id="audit-export"),
]


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_missing_database_is_one_clear_error(env: Env, command: list[str]) -> None:
    result = steward(*command, code=ExitCode.STORE_UNAVAILABLE)
    assert the_error(result.stderr) == (
        f"error: no database at {env.db} (run `steward demo` or `steward db init`)"
    )
    assert not env.db.exists(), "reading commands must not create the database"


@pytest.mark.parametrize(
    ("command", "message", "code"),
    [
        pytest.param(
            ["runs", "show", "nope"], "no run with id 'nope'", ExitCode.NOT_FOUND, id="no-run"
        ),
        pytest.param(
            ["approvals", "approve", "nope"],
            "no approval with id 'nope'",
            ExitCode.NOT_FOUND,
            id="approve-unknown",
        ),
        pytest.param(
            ["approvals", "reject", "nope", "--comment", "no"],
            "no approval with id 'nope'",
            ExitCode.NOT_FOUND,
            id="reject-unknown",
        ),
        pytest.param(
            ["audit", "export"],
            "choose a format: --jsonl or --csv",
            ExitCode.USAGE,
            id="export-no-format",
        ),
        pytest.param(
            ["audit", "export", "--jsonl", "-o", "missing-dir/audit.jsonl"],
            "cannot write missing-dir/audit.jsonl: No such file or directory",
            ExitCode.USAGE,
            id="export-to-missing-directory",
        ),
    ],
)
def test_errors_against_an_existing_database(
    env: Env, alice: str, command: list[str], message: str, code: ExitCode
) -> None:
    steward("db", "init")
    result = steward(*command, code=code)
    assert the_error(result.stderr) == f"error: {message}"


# --- real processes: no traceback ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        pytest.param(
            ["validate", "bad.yaml"], "bad.yaml:2:8: not valid YAML", ExitCode.USAGE, id="validate"
        ),
        pytest.param(
            ["runs", "list"], "no database at", ExitCode.STORE_UNAVAILABLE, id="missing-database"
        ),
        pytest.param(
            ["explain", DEMO_SPEC, "lookup_order", "--args", "{bad"],
            "--args is not valid JSON",
            ExitCode.USAGE,
            id="explain-bad-args",
        ),
    ],
)
def test_process_prints_one_error_line_and_no_traceback(
    env: Env, args: list[str], message: str, code: ExitCode
) -> None:
    Path("bad.yaml").write_text("name: probe\n  model: scripted\n", encoding="utf-8")
    process = steward_process(*args)
    assert process.returncode == code
    assert "Traceback" not in process.stdout + process.stderr
    assert message in the_error(process.stderr)


# --- the demo, then inspecting and deciding what it left -------------------------------------


def test_demo_prints_a_summary(demo: Result) -> None:
    assert "30 tickets in" in demo.stdout
    assert "waiting for approval" in demo.stdout
    assert re.search(r"audit chain verified \(\d+ events\)", demo.stdout)


def test_runs_list_and_show(demo: Result, env: Env) -> None:
    listed = steward("runs", "list", "--limit", "50")
    assert "30 run(s)" in listed.stdout
    for (run_id,) in sql(env.db, "SELECT id FROM runs"):
        assert run_id in listed.stdout

    [(run_id,)] = sql(
        env.db,
        "SELECT id FROM runs WHERE status = 'succeeded' AND id IN "
        "(SELECT run_id FROM events WHERE type = 'gate.decided') ORDER BY created_at LIMIT 1",
    )
    shown = steward("runs", "show", run_id).stdout
    assert shown.startswith(f"{run_id}  agent support-desk@")
    timeline = [line.split("│")[3].strip() for line in shown.splitlines() if line.count("│") == 5]
    assert timeline[0] == "run.started"
    assert "gate.decided" in timeline
    assert timeline[-1] == "run.finished"


def test_approvals_list_shows_the_pending_ones(demo: Result, env: Env) -> None:
    pending = pending_approvals(env.db)
    listed = steward("approvals", "list").stdout
    assert f"{len(pending)} approval(s)" in listed
    for approval_id, run_id in pending:
        assert approval_id in listed
        assert run_id in listed


def test_approve_resumes_the_run_to_success(demo: Result, env: Env, alice: str) -> None:
    approval_id, run_id = pending_refund(env.db)
    assert refunds_of(env, run_id) == 0

    result = steward("approvals", "approve", approval_id)
    assert f"approval {approval_id} approved by {alice}" in result.stdout
    assert f"run {run_id} succeeded" in result.stdout
    assert run_status(env.db, run_id) == "succeeded"
    assert refunds_of(env, run_id) == 1
    assert f"approval.granted: approved by {alice}" in steward("runs", "show", run_id).stdout

    again = steward("approvals", "approve", approval_id, code=ExitCode.FAILED)
    assert the_error(again.stderr) == f"error: approval {approval_id} is already approved"
    assert refunds_of(env, run_id) == 1


def test_approve_with_edited_arguments_runs_the_edited_call(
    demo: Result, env: Env, alice: str
) -> None:
    approval_id, run_id = pending_refund(env.db)
    [(arguments,)] = sql(env.db, "SELECT arguments FROM approvals WHERE id = ?", approval_id)
    edited = {**json.loads(arguments), "amount_usd": 12.5}
    result = steward("approvals", "approve", approval_id, "--args", json.dumps(edited))
    assert f"run {run_id} succeeded" in result.stdout
    assert sql(
        env.systems, "SELECT amount_usd FROM refunds WHERE idempotency_key LIKE ?", f"{run_id}:%"
    ) == [(12.5,)]


def test_an_edit_that_changes_the_order_needs_confirm(demo: Result, env: Env, alice: str) -> None:
    approval_id, run_id = pending_refund(env.db)
    [(arguments,)] = sql(env.db, "SELECT arguments FROM approvals WHERE id = ?", approval_id)
    proposed = json.loads(arguments)
    other = "10114" if proposed["order_id"] != "10114" else "10056"
    edited = {**proposed, "order_id": other, "amount_usd": 12.5}
    refused = steward("approvals", "approve", approval_id, "--args", json.dumps(edited), code=2)
    assert "identifier 'order_id'" in the_error(refused.stderr)
    assert sql(env.db, "SELECT status FROM approvals WHERE id = ?", approval_id) == [("pending",)]
    done = steward(
        "approvals", "approve", approval_id, "--args", json.dumps(edited), "--confirm", "order_id"
    )
    assert f"run {run_id} succeeded" in done.stdout
    assert f"#{other}" in steward("runs", "show", run_id).stdout


def test_edited_arguments_are_decided_by_policy_again(demo: Result, env: Env, alice: str) -> None:
    approval_id, run_id = pending_refund(env.db)
    [(arguments,)] = sql(env.db, "SELECT arguments FROM approvals WHERE id = ?", approval_id)
    edited = {**json.loads(arguments), "amount_usd": 900}
    steward("approvals", "approve", approval_id, "--args", json.dumps(edited))
    assert "condition.refund-over-500" in steward("runs", "show", run_id).stdout
    assert refunds_of(env, run_id) == 0
    bad = steward("approvals", "approve", "apr_x", "--args", "[1]", code=2)
    assert the_error(bad.stderr) == "error: --args must be a JSON object"


def test_reject_resumes_the_run_with_the_denial(demo: Result, env: Env, alice: str) -> None:
    approval_id, run_id = pending_refund(env.db)

    result = steward("approvals", "reject", approval_id, "--comment", "no")
    assert f"approval {approval_id} rejected by {alice}" in result.stdout
    assert f"run {run_id} succeeded" in result.stdout
    assert f"answer: I can't issue that refund myself (rejected by {alice}: no)" in result.stdout
    assert sql(env.db, "SELECT status FROM approvals WHERE id = ?", approval_id) == [("rejected",)]
    assert f"approval.rejected: rejected by {alice}: no" in steward("runs", "show", run_id).stdout
    assert refunds_of(env, run_id) == 0


def test_sweep_expires_overdue_approvals_and_finishes_their_runs(demo: Result, env: Env) -> None:
    approval_id, run_id = pending_refund(env.db)
    others = len(pending_approvals(env.db)) - 1
    # Time passes: this one request is now past its expiry.
    sql(env.db, "UPDATE approvals SET expires_at = 1 WHERE id = ?", approval_id)

    result = steward("approvals", "sweep")
    assert f"run {run_id} succeeded" in result.stdout
    assert sql(env.db, "SELECT status FROM approvals WHERE id = ?", approval_id) == [("expired",)]
    assert "approval.expired" in steward("runs", "show", run_id).stdout
    assert refunds_of(env, run_id) == 0
    assert len(pending_approvals(env.db)) == others
    assert "no overdue approvals" in steward("approvals", "sweep").stdout


def test_audit_verify_and_export(demo: Result, env: Env) -> None:
    [(count,)] = sql(env.db, "SELECT count(*) FROM events")
    assert f"verified {count} events" in steward("audit", "verify").stdout

    steward("audit", "export", "--jsonl", "-o", "audit.jsonl")
    exported = [json.loads(line) for line in Path("audit.jsonl").read_text().splitlines()]
    assert [event["id"] for event in exported] == list(range(1, count + 1))
    assert exported[0]["prev_hash"] == GENESIS_HASH
    for before, after in pairwise(exported):
        assert after["prev_hash"] == before["hash"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", event["hash"]) for event in exported)
    assert all(event["event"]["type"] == event["type"] for event in exported)
    assert steward("audit", "head").stdout.split() == [str(count), exported[-1]["hash"]]


def test_tampered_event_fails_verification(demo: Result, env: Env) -> None:
    review, allow = '"verdict":"review"', '"verdict":"allow"'
    [(event_id,)] = sql(
        env.db,
        "SELECT id FROM events WHERE type = 'gate.decided' AND instr(data, ?) ORDER BY id LIMIT 1",
        review,
    )
    sql(
        env.db, "UPDATE events SET data = replace(data, ?, ?) WHERE id = ?", review, allow, event_id
    )

    result = steward("audit", "verify", code=1)
    assert [line for line in result.stdout.splitlines() if line.startswith("broken")] == [
        f"broken at event {event_id}: content does not match its hash: the row was edited"
    ]
    assert "audit chain does not verify: 1 problem(s)" in the_error(result.stderr)


# --- the CLI acts as a principal: a key, checked against the store ----------------------------

LARGE_REFUND = (
    "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
    "Order #10114 arrived without the ultralight tent. Please refund $330 for it."
)


def test_deciding_without_a_valid_key_is_refused(
    demo: Result, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval_id, _ = pending_refund(env.db)
    monkeypatch.delenv("STEWARD_API_KEY", raising=False)
    nobody = steward("approvals", "approve", approval_id, code=ExitCode.DENIED)
    assert the_error(nobody.stderr) == (
        "error: this command acts as someone: pass --key stw_... or set STEWARD_API_KEY"
    )
    forged = steward("approvals", "approve", approval_id, "--key", "stw_000000000000_" + "x" * 43,
                     code=ExitCode.DENIED)  # fmt: skip
    assert (
        the_error(forged.stderr) == "error: the API key is not valid: unknown, revoked or malformed"
    )
    token = issue_key("carol", "reviewer")
    [(key_id,)] = sql(env.db, "SELECT id FROM api_keys WHERE name = 'carol'")
    steward("keys", "revoke", key_id)
    revoked = steward("approvals", "reject", approval_id, "--comment", "x", "--key", token,
                      code=ExitCode.DENIED)  # fmt: skip
    assert "the API key is not valid" in the_error(revoked.stderr)
    issued = {role: issue_key(f"a-{role}", role, *extra)
              for role, extra in (("agent", ("--agent", "support-desk")), ("viewer", ()))}  # fmt: skip
    for role, token in issued.items():
        monkeypatch.setenv("STEWARD_API_KEY", token)
        refused = steward("approvals", "approve", approval_id, code=ExitCode.DENIED)
        assert the_error(refused.stderr) == f"error: role {role} may not approvals.decide"
    assert sql(env.db, "SELECT status FROM approvals WHERE id = ?", approval_id) == [("pending",)]


def test_the_person_who_started_a_run_may_not_decide_it_with_another_key(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `ops`/`ops` bypass, from the CLI: an admin key `ops` starts the run; the
    reviewer key `ops` is the same principal and may not approve it; bob may."""
    admin, reviewer = issue_key("ops", "admin"), issue_key("ops", "reviewer")
    started = steward("run", DEMO_SPEC, "-i", LARGE_REFUND, "--key", admin)
    assert "waiting" in started.stdout
    approval_id, run_id = pending_refund(env.db)
    [(starter,)] = sql(env.db, "SELECT DISTINCT principal_id FROM api_keys WHERE name = 'ops'")
    [(tags,)] = sql(env.db, "SELECT tags FROM runs WHERE id = ?", run_id)
    assert json.loads(tags) == {"started_by": "admin:ops", "started_by_principal": starter}

    own = steward("approvals", "approve", approval_id, "--key", reviewer, code=ExitCode.DENIED)
    assert the_error(own.stderr) == (
        f"error: ops started run {run_id}; another person must decide its requests"
    )
    assert sql(env.db, "SELECT status FROM approvals WHERE id = ?", approval_id) == [("pending",)]

    monkeypatch.setenv("STEWARD_API_KEY", issue_key("bob", "reviewer"))
    assert f"run {run_id} succeeded" in steward("approvals", "approve", approval_id).stdout
    [(bob,)] = sql(env.db, "SELECT principal_id FROM api_keys WHERE name = 'bob'")
    [(data,)] = sql(env.db, "SELECT data FROM events WHERE type = 'approval.decided'")
    assert json.loads(data)["by"] == "reviewer:bob" and json.loads(data)["principal"] == bob


def test_only_keys_that_may_start_runs_start_them(env: Env) -> None:
    reviewer = issue_key("rita", "reviewer")
    refused = steward("run", DEMO_SPEC, "-i", "Where is order #10005?", "--key", reviewer,
                      code=ExitCode.DENIED)  # fmt: skip
    assert the_error(refused.stderr) == "error: role reviewer may not runs.start"
    bot = issue_key("desk-bot", "agent", "--agent", "support-desk")
    steward("run", DEMO_SPEC, "-i", "Where is order #10005?", "--key", bot)
    [(tags,)] = sql(env.db, "SELECT tags FROM runs")
    assert json.loads(tags)["started_by"] == "agent:support-desk"


def test_a_name_is_one_principal(env: Env) -> None:
    first = steward("keys", "create", "--name", "alice", "--role", "reviewer").stdout
    second = steward("keys", "create", "--name", "alice", "--role", "admin").stdout
    [(principal,)] = sql(env.db, "SELECT DISTINCT principal_id FROM api_keys WHERE name = 'alice'")
    assert f"principal {principal}" in first and f"principal {principal}" in second
    taken = steward(
        "keys", "create", "--name", "alice", "--role", "agent", "--agent", "support-desk",
        code=ExitCode.FAILED,
    )  # fmt: skip
    assert the_error(taken.stderr) == (
        "error: 'alice' is already the name of a person; an agent's key needs a name of its own"
    )
    issue_key("desk-bot", "agent", "--agent", "support-desk")
    other = steward("keys", "create", "--name", "desk-bot", "--role", "agent", "--agent", "billing",
                    code=ExitCode.FAILED)  # fmt: skip
    assert "already the name of agent support-desk's identity" in the_error(other.stderr)
    assert sql(env.db, "SELECT count(*) FROM principals") == [(2,)]


def test_keys_are_managed_as_the_admin_whose_key_is_given(env: Env) -> None:
    root = issue_key("root", "admin")  # the first key: nobody holds one yet
    issue_key("eve", "viewer", "--key", root)
    viewer = issue_key("vic", "viewer")
    refused = steward("keys", "create", "--name", "x", "--role", "admin", "--key", viewer,
                      code=ExitCode.DENIED)  # fmt: skip
    assert the_error(refused.stderr) == "error: role viewer may not keys.manage"
    assert sql(env.db, "SELECT name, created_by FROM api_keys ORDER BY created_at") == [
        ("root", "cli"), ("eve", "admin:root"), ("vic", "cli"),
    ]  # fmt: skip


def test_an_error_location_is_never_read_as_an_emoji_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rich turns ":100:" into an emoji by default: "agent.yaml:100:18" must stay itself
    (found by Hypothesis in tests/spec/test_hostile_specs.py)."""
    import typer

    from steward.cli.context import fail

    with pytest.raises(typer.Exit):
        fail("agent.yaml:100:18: tools[0]: unknown tool 'x'")
    assert "agent.yaml:100:18: tools[0]" in capsys.readouterr().err


# --- the multi-agent demo: a row per agent; a waiting refund resumes its tree from the root ---


def test_the_multi_agent_demo_then_an_approval_resumes_the_tree(env: Env, alice: str) -> None:
    shown = steward("demo", "--multi-agent", "--limit", "40").stdout
    assert "steward demo: triage and its specialists" in shown
    assert "40 tickets in" in shown and "per agent" in shown
    rows = {m[0]: int(m[1]) for m in re.findall(r"│ (\w+)\s+│\s+(\d+) │", shown)}
    assert rows["triage"] == 40
    specialists = ("orders", "refunds", "account", "escalation")  # those that ran have a row
    # each ticket reaches one desk (hop 1); what a desk cannot resolve goes on to
    # escalation (hop 2), counted in escalation's row too
    below = sql(env.db, "SELECT hop, agent, count(*) FROM runs WHERE hop > 0 GROUP BY hop, agent")
    assert sum(n for hop, _, n in below if hop == 1) == rows["triage"]
    assert {agent for hop, agent, _ in below if hop == 2} <= {"escalation"}
    assert sum(rows.get(a, 0) for a in specialists) == sum(n for _, _, n in below)
    assert "steward serve --demo --multi-agent" in shown

    approval_id, child = pending_refund(env.db)
    [(agent, parent, root, hop)] = sql(
        env.db, "SELECT agent, parent_run_id, root_run_id, hop FROM runs WHERE id = ?", child
    )
    assert (agent, parent, root, hop) == ("refunds", root, parent, 1)
    assert run_status(env.db, root) == run_status(env.db, child) == "waiting"

    result = steward("approvals", "approve", approval_id)
    assert f"approval {approval_id} approved by {alice}" in result.stdout
    assert run_status(env.db, child) == "succeeded"
    assert run_status(env.db, root) == "succeeded", "the decision resumed the tree's root"
    assert refunds_of(env, child) == 1


def test_the_multi_agent_modes_refuse_what_they_cannot_do(env: Env) -> None:
    serve = steward("serve", "--multi-agent", code=ExitCode.USAGE)
    assert "give it with --demo" in serve.output
