"""Policy on hostile inputs: numbers that are not numbers never pass (fail closed), and a
decision's reasons never depend on the process's hash seed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steward.core.decision import Verdict
from steward.core.messages import ToolCall
from steward.policy import Policy, compile_policy
from steward.spec import load_spec_text
from steward.tools import tool

SPEC = """
name: bank
model: scripted
tools: [pay, dossier]
decision_authority:
  autonomous: [dossier]
  requires_human_review: [pay]
conditions:
  - id: small
    tool: pay
    when: args.amount <= 50.0
    then: autonomous
    reason: small payments are fine
data_access:
  allow_pii: false
  allow_financial: false
  allow_internal_docs: false
"""


@tool(effect="write", keyed=True)
def pay(to: str, amount: float) -> dict[str, Any]:
    return {}


@tool(effect="read", data_classes=("internal", "financial", "pii"))
def dossier(customer: str) -> dict[str, Any]:
    return {}


def make_policy() -> Policy:
    loaded = load_spec_text(SPEC, "bank.yaml")
    return compile_policy(loaded.spec, loaded.version, {"pay": pay, "dossier": dossier})


@pytest.mark.parametrize("bad", [math.nan, -math.inf, math.inf])
def test_a_number_that_is_not_a_number_is_denied(bad: float) -> None:
    policy = make_policy()
    assert policy.evaluate(ToolCall("c", "pay", {"to": "ann", "amount": 20.0})).verdict is (
        Verdict.ALLOW
    )
    decision = policy.evaluate(ToolCall("c", "pay", {"to": "ann", "amount": bad}))
    assert decision.verdict is Verdict.DENY, decision
    assert decision.primary_code == "args.not_finite"
    assert "amount" in decision.reasons[0].message
    nested = policy.evaluate(ToolCall("c", "pay", {"to": "ann", "amount": 1.0, "x": [{"y": bad}]}))
    assert nested.verdict is Verdict.DENY and "x[0].y" in nested.reasons[0].message


def test_every_forbidden_data_class_is_a_reason_in_a_fixed_order() -> None:
    decision = make_policy().evaluate(ToolCall("c", "dossier", {"customer": "ann"}))
    assert decision.verdict is Verdict.DENY
    assert [r.code for r in decision.reasons] == [
        "data_access.pii",
        "data_access.financial",
        "data_access.internal",
    ]


_PROBE = """
import json
from steward.core.messages import ToolCall
from tests.policy.test_policy_inputs import make_policy
decision = make_policy().evaluate(ToolCall("c", "dossier", {"customer": "ann"}))
print(json.dumps([[r.code, r.message] for r in decision.reasons] + [list(decision.rule_ids)]))
"""


def test_reasons_do_not_depend_on_the_hash_seed() -> None:
    seen = set()
    for seed in ("0", "1", "2", "3", "4", "5", "6", "7"):
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(__file__).resolve().parents[2],
        )
        seen.add(done.stdout.strip())
    assert len(seen) == 1, seen
    codes = [pair[0] for pair in json.loads(seen.pop())[:-1]]
    assert codes == ["data_access.pii", "data_access.financial", "data_access.internal"]
