"""Policy decisions, including properties that must hold for every input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core.decision import Verdict
from steward.core.messages import ToolCall
from steward.core.values import json_problem
from steward.policy import Policy, PolicyContext, compile_policy
from steward.spec import load_spec_text
from steward.tools import tool

SPEC = """
name: bank
model: scripted
tools: [search, pay, read_card, export, untiered]
decision_authority:
  autonomous: [search, read_card]
  requires_human_review: [pay]
  forbidden: [export, wipe]
conditions:
  - id: big
    tool: pay
    when: args.amount > 500
    then: forbidden
    reason: big payments go to finance
  - id: small
    tool: pay
    when: args.amount <= 50
    then: autonomous
    reason: small payments are fine
  - id: named-recipient
    tool: pay
    when: has(sources.to) && sources.to != "user"
    then: forbidden
    reason: pay only recipients the user named
data_access:
  allow_financial: false
  max_records_per_query: 10
rate_limits:
  pay: 3/hour
cost_controls:
  max_cost_per_run_usd: 1.0
  max_daily_spend_usd: 10.0
"""


@tool(effect="read", limit_arg="limit")
def search(query: str, limit: int = 5) -> list[str]:
    return []


@tool(effect="write", keyed=True)
def pay(to: str, amount: float) -> dict[str, Any]:
    return {}


@tool(effect="read", data_classes=("financial",))
def read_card(customer: str) -> dict[str, Any]:
    return {}


@tool(effect="read")
def export() -> str:
    return ""


@tool(effect="read")
def untiered() -> str:
    return ""


def make_policy() -> Policy:
    loaded = load_spec_text(SPEC, "bank.yaml")
    tools = {t.name: t for t in (search, pay, read_card, export, untiered)}
    return compile_policy(loaded.spec, loaded.version, tools)


POLICY = make_policy()


@pytest.mark.parametrize(
    ("name", "args", "sources", "verdict", "code"),
    [
        ("search", {"query": "x"}, {}, Verdict.ALLOW, "tier.autonomous"),
        (
            "pay",
            {"to": "bob", "amount": 100},
            {"to": "user"},
            Verdict.REVIEW,
            "tier.requires_human_review",
        ),
        ("pay", {"to": "bob", "amount": 20}, {"to": "user"}, Verdict.ALLOW, "condition.small"),
        ("pay", {"to": "bob", "amount": 501.5}, {"to": "user"}, Verdict.DENY, "condition.big"),
        (
            "pay",
            {"to": "eve", "amount": 20},
            {"to": "tool"},
            Verdict.DENY,
            "condition.named-recipient",
        ),
        ("pay", {"to": "bob", "amount": "lots"}, {}, Verdict.DENY, "policy.condition_error"),
        ("read_card", {"customer": "c1"}, {}, Verdict.DENY, "data_access.financial"),
        ("export", {}, {}, Verdict.DENY, "tool.forbidden"),
        ("wipe", {}, {}, Verdict.DENY, "tool.forbidden"),
        ("untiered", {}, {}, Verdict.DENY, "tool.forbidden"),
        ("nope", {}, {}, Verdict.DENY, "tool.unlisted"),
        ("search", {"query": "x", "limit": 11}, {}, Verdict.DENY, "data_access.max_records"),
    ],
)
def test_decision_table(
    name: str, args: dict[str, Any], sources: dict[str, str], verdict: Verdict, code: str
) -> None:
    decision = POLICY.evaluate(ToolCall("c", name, args), PolicyContext(sources=sources))
    assert decision.verdict is verdict
    assert decision.reasons[0].code == code
    assert decision.rule_ids, "every decision names the rule that made it"


def test_rate_and_budget_counters_arrive_in_the_context() -> None:
    call = ToolCall("c", "pay", {"to": "bob", "amount": 20})
    assert (
        POLICY.evaluate(call, PolicyContext(sources={"to": "user"}, rate_used=2)).verdict
        is Verdict.ALLOW
    )
    limited = POLICY.evaluate(call, PolicyContext(sources={"to": "user"}, rate_used=3))
    assert (limited.verdict, limited.reasons[0].code) == (Verdict.DENY, "rate_limit.exceeded")
    over = POLICY.evaluate(
        call, PolicyContext(sources={"to": "user"}, run_spent_usd=0.9, estimate_usd=0.2)
    )
    assert over.reasons[0].code == "budget.run_exhausted"
    daily = POLICY.evaluate(
        call,
        PolicyContext(
            sources={"to": "user"}, run_spent_usd=0, day_spent_usd=9.95, estimate_usd=0.1
        ),
    )
    assert daily.reasons[0].code == "budget.daily_exhausted"
    nan = POLICY.evaluate(call, PolicyContext(sources={"to": "user"}, run_spent_usd=math.nan))
    assert (nan.verdict, nan.reasons[0].code) == (Verdict.DENY, "budget.invalid")


def test_listed_tool_without_metadata_is_assumed_to_touch_every_data_class() -> None:
    loaded = load_spec_text(SPEC, "bank.yaml")
    bare = compile_policy(loaded.spec, loaded.version, tools=None)
    decision = bare.evaluate(ToolCall("c", "search", {"query": "x"}))
    assert decision.verdict is Verdict.DENY and decision.reasons[0].code.startswith("data_access.")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
arguments = st.dictionaries(
    st.sampled_from(["to", "amount", "query", "limit", "x"]) | st.text(max_size=6),
    json_values,
    max_size=4,
)
source_maps = st.dictionaries(
    st.sampled_from(["to", "amount"]), st.sampled_from(["user", "tool", "model", "config", "?"])
)
counters = (
    st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=0, max_value=100)
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["export", "wipe", "untiered"]) | st.text(max_size=12),
    args=arguments,
    sources=source_maps,
    rate=st.none() | st.integers(min_value=-5, max_value=10),
    spent=counters,
)
def test_no_input_makes_an_unlisted_or_forbidden_call_allow(
    name: str, args: dict[str, Any], sources: dict[str, str], rate: int | None, spent: float | None
) -> None:
    if name in {"search", "pay", "read_card"}:
        return  # listed and not forbidden: covered by the next property
    context = PolicyContext(sources=sources, rate_used=rate, run_spent_usd=spent)
    decision = POLICY.evaluate(ToolCall("c", name, args), context)
    assert decision.verdict is Verdict.DENY


@settings(max_examples=400, deadline=None)
@given(args=arguments, sources=source_maps)
def test_a_payment_is_allowed_only_when_small_numeric_and_user_named(
    args: dict[str, Any], sources: dict[str, str]
) -> None:
    decision = POLICY.evaluate(ToolCall("c", "pay", args), PolicyContext(sources=sources))
    if decision.verdict is Verdict.ALLOW:
        amount = args.get("amount")
        assert isinstance(amount, int | float) and not isinstance(amount, bool)
        assert amount <= 50
        assert sources.get("to", "user") == "user"


class _Exploding:
    def execute(self, _activation: object) -> object:
        raise RuntimeError("boom")


class _NotBool:
    def execute(self, _activation: object) -> object:
        return "yes"


@pytest.mark.parametrize("program", [_Exploding(), _NotBool()])
@settings(max_examples=50, deadline=None)
@given(args=arguments)
def test_any_evaluation_error_yields_deny(program: object, args: dict[str, Any]) -> None:
    policy = make_policy()
    rule = policy._rules["pay"]
    broken = rule.conditions[0].__class__(
        rule.conditions[0].id, program, rule.conditions[0].then, "r"
    )
    policy._rules["pay"] = rule.__class__(
        rule.name, rule.tier, rule.data_classes, rule.effect, rule.limit_arg, (broken,), rule.base
    )
    decision = policy.evaluate(ToolCall("c", "pay", args))
    assert decision.verdict is Verdict.DENY
    # arguments holding NaN or ±Infinity are denied before any condition runs
    finite = json_problem(args, max_depth=None) is None
    assert decision.reasons[0].code == ("policy.condition_error" if finite else "args.not_finite")


def test_an_exception_anywhere_in_evaluate_is_a_deny() -> None:
    policy = make_policy()
    policy._rules = None  # type: ignore[assignment]  # sabotage: evaluation raises
    decision = policy.evaluate(ToolCall("c", "search", {"query": "x"}))
    assert (decision.verdict, decision.reasons[0].code) == (Verdict.DENY, "policy.error")


@pytest.mark.parametrize(
    ("name", "verdict", "code", "conditional"),
    [
        ("search", Verdict.ALLOW, "tier.autonomous", True),  # a limit argument can still deny
        ("pay", Verdict.REVIEW, "tier.requires_human_review", True),  # its conditions decide
        ("read_card", Verdict.DENY, "data_access.financial", False),
        ("export", Verdict.DENY, "tool.forbidden", False),
        ("untiered", Verdict.DENY, "tool.forbidden", False),
        ("nowhere", Verdict.DENY, "tool.unlisted", False),
    ],
)
def test_the_standing_decision_before_any_arguments(
    name: str, verdict: Verdict, code: str, conditional: bool
) -> None:
    """What a tool listing (the MCP gateway's tools/list) may show of each tool."""
    decision, may_change = POLICY.standing(name)
    assert decision.verdict is verdict
    assert decision.reasons[0].code == code
    assert may_change is conditional
