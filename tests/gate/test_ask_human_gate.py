"""The approval stage answers `ask_human` itself: whatever the policy or the autonomy
mode says short of deny, a question waits for a person and never reaches the execute
stage; the answer is used once."""

from __future__ import annotations

import time

from steward.core.agent_state import AgentState, Autonomy
from steward.core.approval import ApprovalView
from steward.core.events import ApprovalRequested, ToolStarted, ToolSucceeded
from steward.core.messages import ToolCall
from steward.gate import CallStatus, Gate, GateConfig
from steward.gate.stages.approval import call_hash
from steward.policy import compile_policy
from steward.spec import load_spec_text
from steward.store.limits import MemoryLimits
from steward.testing import MemoryScope
from steward.tools.builtin import ask_human

SPEC = """
name: asker
model: scripted
tools: [ask_human]
conditions:
  - id: easy
    tool: ask_human
    when: "true"
    then: autonomous
    reason: a condition cannot let a question through unasked
"""
CALL = ToolCall("q1", "ask_human", {"question": "Which order?"})


def gate(mode: Autonomy = Autonomy.SUPERVISED) -> Gate:
    loaded = load_spec_text(SPEC, "asker.yaml")
    policy = compile_policy(loaded.spec, loaded.version, {"ask_human": ask_human})
    config = GateConfig(states=lambda _agent: AgentState(True, mode), limits=MemoryLimits())
    return Gate(policy, {"ask_human": ask_human}, config)


def answer(scope: MemoryScope, approval_id: str, *, used: bool = False) -> None:
    digest = call_hash(CALL.name, CALL.arguments, scope.agent_version)
    scope.approvals[approval_id] = ApprovalView(
        approval_id, "run_test:1:q1", "approved", digest, time.time() + 60, used, "#1002", "carol"
    )


async def test_an_autonomous_agent_still_waits_for_the_answer() -> None:
    scope = MemoryScope()
    outcome = await gate(Autonomy.AUTONOMOUS).process(scope, CALL, 1)
    assert outcome.status is CallStatus.WAITING
    [request] = scope.of_type(ApprovalRequested)
    assert request.tool == "ask_human" and request.arguments == {"question": "Which order?"}  # type: ignore[attr-defined]
    answer(scope, outcome.approval_id)
    done = await gate(Autonomy.AUTONOMOUS).process(scope, CALL, 1)
    assert (done.status, done.result) == (CallStatus.EXECUTED, {"answer": "#1002"})
    assert scope.of_type(ToolStarted) == []  # nothing ran: the person answered
    assert len(scope.of_type(ToolSucceeded)) == 1


async def test_an_answer_already_used_elsewhere_is_denied() -> None:
    scope = MemoryScope()
    outcome = await gate().process(scope, CALL, 1)
    answer(scope, outcome.approval_id, used=True)
    done = await gate().process(scope, CALL, 1)
    assert (done.status, done.decision.primary_code) == (CallStatus.DENIED, "approval.used")
    assert scope.of_type(ToolSucceeded) == []


async def test_an_answer_bound_to_another_question_is_denied() -> None:
    scope = MemoryScope()
    outcome = await gate().process(scope, CALL, 1)
    answer(scope, outcome.approval_id)
    other = ToolCall("q1", "ask_human", {"question": "May I refund everything?"})
    done = await gate().process(
        MemoryScope(history=scope.history, approvals=scope.approvals), other, 1
    )
    assert done.decision.primary_code == "approval.mismatch"
