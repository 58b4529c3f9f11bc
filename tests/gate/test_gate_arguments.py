"""The gate never changes the arguments it is handed: validation fills in no defaults, so
policy, the approval request and the journal see exactly what the model proposed, while
the tool still gets its own defaults. Non-numbers and bounds are refused at validation."""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from steward.core.decision import Verdict
from steward.core.events import ApprovalRequested, GateDecided, ToolCallProposed
from steward.core.messages import ToolCall
from steward.gate import CallStatus, Gate
from steward.policy import compile_policy
from steward.spec import load_spec_text
from steward.testing import MemoryScope, memory_gate_config
from steward.tools import ToolContext, tool

SPEC = """
name: ops
model: scripted
tools: [search, send, refund]
decision_authority:
  autonomous: [search, refund]
  requires_human_review: [send]
conditions:
  - id: no-explicit-limit
    tool: search
    when: "'limit' in args"
    then: forbidden
    reason: the model may not choose the limit
  - id: small
    tool: refund
    when: args.amount_usd <= 50.0
    then: autonomous
    reason: small refunds are fine
"""


class Envelope(BaseModel):
    subject: str
    priority: str = "normal"


def make_gate() -> tuple[Gate, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    @tool(effect="read")
    def search(query: str, limit: int = 3) -> list[str]:
        received.append({"query": query, "limit": limit})
        return [query] * limit

    @tool(effect="write", keyed=True)
    def send(to: str, envelope: Envelope, ctx: ToolContext, cc: str = "") -> str:
        received.append({"to": to, "envelope": envelope, "cc": cc})
        return "sent"

    @tool(effect="write", keyed=True)
    def refund(amount_usd: Annotated[float, Field(gt=0)], ctx: ToolContext) -> str:
        received.append({"amount_usd": amount_usd})
        return "refunded"

    tools = {t.name: t for t in (search, send, refund)}
    loaded = load_spec_text(SPEC, "ops.yaml")
    return Gate(
        compile_policy(loaded.spec, loaded.version, tools), tools, memory_gate_config()
    ), received


async def test_policy_and_journal_see_the_proposal_and_the_tool_gets_its_defaults() -> None:
    gate, received = make_gate()
    scope = MemoryScope()
    arguments: dict[str, Any] = {"query": "returns"}
    call = ToolCall("c1", "search", arguments)
    outcome = await gate.process(scope, call, 1)
    # with defaults written in place, `'limit' in args` would have been true: a deny
    assert outcome.status is CallStatus.EXECUTED, outcome
    assert received == [{"query": "returns", "limit": 3}]
    assert arguments == {"query": "returns"} and call.arguments is arguments
    [proposed] = [e for e in scope.events if isinstance(e, ToolCallProposed)]
    assert proposed.call.arguments == {"query": "returns"}


async def test_an_approval_is_requested_for_the_arguments_as_proposed() -> None:
    gate, _ = make_gate()
    scope = MemoryScope()
    arguments: dict[str, Any] = {"to": "ann@example.com", "envelope": {"subject": "hi"}}
    before = copy.deepcopy(arguments)
    outcome = await gate.process(scope, ToolCall("c1", "send", arguments), 1)
    assert outcome.status is CallStatus.WAITING
    [requested] = [e for e in scope.events if isinstance(e, ApprovalRequested)]
    assert requested.arguments == before
    assert arguments == before


@pytest.mark.parametrize("amount", [-math.inf, math.nan, math.inf, -5.0, 0.0])
async def test_a_refund_that_is_not_a_positive_number_never_reaches_policy(amount: float) -> None:
    gate, received = make_gate()
    scope = MemoryScope()
    outcome = await gate.process(scope, ToolCall("c1", "refund", {"amount_usd": amount}), 1)
    assert outcome.status is CallStatus.DENIED
    assert outcome.decision.verdict is Verdict.DENY
    assert outcome.error_code == "args.invalid"
    assert received == []
    stages = [e.stage for e in scope.events if isinstance(e, GateDecided)]
    assert stages == ["validate"]


async def test_arguments_nested_too_deep_are_invalid() -> None:
    gate, received = make_gate()
    value: Any = "x"
    for _ in range(40):
        value = [value]
    outcome = await gate.process(MemoryScope(), ToolCall("c1", "search", {"query": value}), 1)
    assert outcome.error_code == "args.invalid" and "nested deeper" in (outcome.error or "")
    assert received == []
