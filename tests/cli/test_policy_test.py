"""`steward policy test FILE`: calls with expected decisions, decided through the gate's
deciding stages (the path `explain` takes); exit 0 when all pass, 1 on a mismatch, 2 with
located problems (file:line:column: field) for a bad file, 3 for a missing one."""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from steward.cli.exits import ExitCode
from steward.cli.main import app
from steward.demo import tools as demo_tools

DEMO_SPEC = Path(demo_tools.__file__).with_name("support_agent.yaml")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_agent.policy-tests.yaml"


def steward(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert "Traceback" not in result.output
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    shutil.copy(DEMO_SPEC, tmp_path / "agent.yaml")
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_example_file_passes() -> None:
    result = json.loads(steward("policy", "test", str(EXAMPLE), "--json").stdout)
    assert result["failed"] == 0 and result["passed"] == len(result["cases"]) == 6
    advisory = next(c for c in result["cases"] if "advisory" in c["name"])
    assert advisory["verdict"] == "review" and advisory["stage"] == "autonomy"


def test_a_mismatch_exits_1_and_names_the_line(here: Path) -> None:
    tests = write(here / "t.yaml", (
        "- tool: lookup_order\n  arguments: {order_id: '10001'}\n  expect: allow\n"
        "- tool: issue_refund\n  arguments: {order_id: '10001', amount_usd: 700, reason: x}\n"
        "  expect: review\n"
        "- tool: issue_refund\n  arguments: {order_id: '10001', amount_usd: 20, reason: x}\n"
        "  expect: allow\n  rule: condition.refund-over-500\n"
    ))  # fmt: skip
    result = steward("policy", "test", tests, "--spec", "agent.yaml", code=ExitCode.FAILED)
    out = result.stdout
    assert "1 passed, 2 failed" in out
    assert f"{tests}:4 issue_refund: expected review, got deny at policy" in out
    assert f"{tests}:7 issue_refund: expected allow by condition.refund-over-500, got allow" in out

    shaped = json.loads(
        steward("policy", "test", tests, "--spec", "agent.yaml", "--json", code=1).stdout
    )
    assert (shaped["passed"], shaped["failed"]) == (1, 2)
    case: dict[str, Any] = shaped["cases"][1]
    assert list(case) == ["index", "line", "name", "spec", "tool", "expect", "expected_rule",
                          "verdict", "stage", "rules", "reasons", "risk", "ok"]  # fmt: skip
    assert case["line"] == 4 and case["verdict"] == "deny" and case["ok"] is False
    assert case["rules"] == ["condition.refund-over-500"]


def test_the_same_decisions_as_explain(here: Path) -> None:
    """One decision path: each case's decision equals `explain --json` for the call."""
    calls = [("lookup_order", {"order_id": 10001}), ("get_payment_details", {"email": "a@b.c"}),
             ("export_customers", {}), ("issue_refund", {"order_id": "1", "amount_usd": 70,
                                                        "reason": "x"})]  # fmt: skip
    text = "".join(
        f"- tool: {tool}\n  arguments: {json.dumps(args)}\n  expect: allow\n"
        for tool, args in calls
    )
    tests = write(here / "t.yaml", text)
    cases = json.loads(
        steward("policy", "test", tests, "--spec", "agent.yaml", "--json", code=1).stdout
    )["cases"]
    for case, (tool, args) in zip(cases, calls, strict=True):
        explained = steward("explain", "agent.yaml", tool, "--args", json.dumps(args), "--json",
                            code=ExitCode.DENIED if case["verdict"] == "deny" else 0)  # fmt: skip
        shown = json.loads(explained.stdout)
        for key in ("verdict", "stage", "rules", "reasons"):
            assert case[key] == shown[key], (tool, key)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        pytest.param("- tool: lookup_order\n  expect: maybe\n",
                     [":2:3: [0].expect: Input should be 'allow', 'review', 'deny' or 'transform'"],
                     id="verdict"),
        pytest.param("- tool: lookup_order\n  expect: allow\n  argumens: {}\n",
                     [":3:3: [0].argumens: unknown key 'argumens' (expected one of: name, spec,"],
                     id="unknown-key"),
        pytest.param("- tool: x\n  expect: allow\n  context: {autonomy: wild, sources: {a: alien}}\n",
                     [":3:13: [0].context.autonomy: Input should be 'advisory'",
                      ":3:39: [0].context.sources.a: Input should be 'user'"], id="context"),
        pytest.param("- tool: x\n  expect: allow\n- expect: deny\n",
                     [":3:3: [1].tool: required field is missing"], id="missing-tool"),
        pytest.param("tool: x\n", [":1:1: expected a list of calls"], id="not-a-list"),
        pytest.param("- tool: [x\n", [":2:1: not valid YAML: expected ',' or ']'"], id="yaml"),
    ],
)  # fmt: skip
def test_a_bad_file_is_reported_located(here: Path, text: str, problems: list[str]) -> None:
    tests = write(here / "t.yaml", text)
    result = steward("policy", "test", tests, "--spec", "agent.yaml", code=ExitCode.USAGE)
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == len(problems), result.output
    for line, problem in zip(lines, problems, strict=True):
        assert line.startswith(f"error: {tests}{problem}"), (line, problem)


def test_a_case_without_a_spec_is_located(here: Path) -> None:
    tests = write(here / "t.yaml", "- tool: x\n  expect: allow\n- tool: y\n  expect: deny\n")
    result = steward("policy", "test", tests, code=ExitCode.USAGE)
    assert f"error: {tests}:1:3: [0].spec: which agent spec?" in result.output
    assert f"error: {tests}:3:3: [1].spec: which agent spec?" in result.output


def test_a_missing_file_or_spec(here: Path) -> None:
    missing = steward("policy", "test", "nowhere.yaml", code=ExitCode.NOT_FOUND)
    assert "nowhere.yaml:0:0: no such file" in missing.output
    tests = write(here / "t.yaml", "- {spec: gone.yaml, tool: x, expect: allow}\n")
    gone = steward("policy", "test", tests, code=ExitCode.NOT_FOUND)
    assert "gone.yaml:0:0: no such file" in gone.output
    broken = write(here / "broken.yaml", "name: x\nmodel: rules\ntools: [nope]\n")
    bad_spec = steward("policy", "test", write(here / "u.yaml", "- {tool: x, expect: allow}\n"),
                       "--spec", broken, code=ExitCode.USAGE)  # fmt: skip
    assert f"{broken}:2:1: model.name:" in bad_spec.output
