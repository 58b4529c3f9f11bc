"""The built-in `ask_human` tool: the model asks the person a question, the run waits like
an approval, and the answer (the approval's comment) comes back as the call's result; on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from steward.core.errors import ConflictError, SpecError
from steward.core.events import (
    ApprovalRequested,
    ApprovalUsed,
    GateDecided,
    RunStatus,
    ToolCallProposed,
    ToolSucceeded,
)
from steward.core.messages import Source
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval, get_approval, list_approvals
from steward.store.chain import verify_chain
from steward.store.runs import get_run, read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: asker
model: scripted
prompt: You help, and ask when you must.
tools: [ask_human, refund]
decision_authority:
  autonomous: [refund]
approvals: {expires_after_seconds: %s}
"""

QUESTION = {"question": "Which order should I refund, #1001 or #1002?"}
refunds: list[str] = []


@tool(effect="write", keyed=True)
def refund(order: str) -> dict[str, str]:
    refunds.append(order)
    return {"refunded": order}


def script() -> list[Any]:
    return [
        calls(("ask_human", QUESTION)),
        calls(("refund", {"order": "1002"})),
        final("refunded #1002"),
    ]


def asker(model: ScriptedModel, expires: float = 3600) -> Any:
    return build_agent(load_spec_text(SPEC % expires, "asker.yaml"), [refund], model=model)


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()


def _tool_message(model: ScriptedModel) -> dict[str, Any]:
    message = model.requests[-1].messages[-1]
    assert (message.role, message.name) == ("tool", "ask_human")
    body: dict[str, Any] = json.loads(message.content)
    return body


async def test_a_question_waits_and_the_answer_reaches_the_model_after_a_restart(
    any_db: Database, journal: Journal
) -> None:
    refunds.clear()
    first = ScriptedModel(script())
    waiting = await Runner(EmbeddedEngine(any_db, journal)).run(asker(first), "refund my order")
    assert waiting.status is RunStatus.WAITING and waiting.reason_code == "approval.pending"
    assert get_run(any_db, waiting.run_id).status == "waiting"
    assert [s.name for s in first.requests[0].tools] == ["ask_human", "refund"]
    [pending] = list_approvals(any_db)
    assert pending.id == waiting.waiting_on[0]
    assert (pending.tool, pending.arguments) == ("ask_human", QUESTION)
    assert pending.expires_at == pytest.approx(time.time() + 3600, abs=30)

    decide_approval(any_db, pending.id, approve=True, by="carol", comment="#1002, please")
    # A new process: fresh journal, runner, agent and model; only the store is shared.
    journal.close()
    second_journal = Journal(any_db)
    second = ScriptedModel(script())
    try:
        done = await Runner(EmbeddedEngine(any_db, second_journal)).resume(
            asker(second), waiting.run_id
        )
    finally:
        second_journal.close()
    assert (done.status, done.output) == (RunStatus.SUCCEEDED, "refunded #1002")
    # the resumed model's turn after the question sees the answer as the call's result
    asked = second.requests[0].messages[-1]
    assert json.loads(asked.content) == {"ok": True, "result": {"answer": "#1002, please"}}
    assert refunds == ["1002"]
    # the refund's order number came from the person's answer: its source says so
    proposed = [e.event for e in read_journal(any_db, waiting.run_id)]
    refund_call = next(
        e for e in proposed if isinstance(e, ToolCallProposed) and e.call.name == "refund"
    )
    assert refund_call.sources == {"order": Source.HUMAN}
    assert get_approval(any_db, pending.id).used


async def test_the_answer_is_recorded_once_and_the_approval_is_used_once(
    any_db: Database, journal: Journal
) -> None:
    model = ScriptedModel(script())
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = asker(model)
    waiting = await runner.run(agent, "refund my order")
    approval_id = waiting.waiting_on[0]
    decide_approval(any_db, approval_id, approve=True, by="carol", comment="1002")
    with pytest.raises(ConflictError, match="already approved"):
        decide_approval(any_db, approval_id, approve=True, by="mallory", comment="1001")
    assert (await runner.resume(agent, waiting.run_id)).status is RunStatus.SUCCEEDED
    again = await runner.resume(agent, waiting.run_id)
    assert again.status is RunStatus.SUCCEEDED
    await journal.flush()
    events = [e.event for e in read_journal(any_db, waiting.run_id)]
    key = next(e.key for e in events if isinstance(e, ApprovalRequested))
    assert sum(isinstance(e, ApprovalUsed) for e in events) == 1
    answers = [e for e in events if isinstance(e, ToolSucceeded) and e.key == key]
    assert [a.result for a in answers] == [{"answer": "1002"}]
    decided = [
        (e.stage, e.decision.primary_code)
        for e in events
        if isinstance(e, GateDecided) and e.key == key
    ]  # asked, decided again by policy on resume, then answered
    assert decided == [
        ("policy", "tier.asks_human"),
        ("policy", "tier.asks_human"),
        ("approval", "approval.answered"),
    ]
    with any_db.reader.connect() as connection:
        assert verify_chain(connection).ok


async def test_a_declined_question_is_an_error_the_model_sees(
    any_db: Database, journal: Journal
) -> None:
    model = ScriptedModel([calls(("ask_human", QUESTION)), final("I will wait for details")])
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = asker(model)
    waiting = await runner.run(agent, "refund my order")
    decide_approval(
        any_db, waiting.waiting_on[0], approve=False, by="carol", comment="ask the customer"
    )
    done = await runner.resume(agent, waiting.run_id)
    assert done.status is RunStatus.SUCCEEDED
    body = _tool_message(model)
    assert body["ok"] is False
    assert body["error"] == {
        "code": "approval.rejected",
        "message": "the person declined to answer: ask the customer",
    }


async def test_a_question_nobody_answers_expires(any_db: Database, journal: Journal) -> None:
    model = ScriptedModel([calls(("ask_human", QUESTION)), final("no answer came")])
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = asker(model, expires=0.05)
    waiting = await runner.run(agent, "refund my order")
    await asyncio.sleep(0.1)
    with pytest.raises(ConflictError, match="expired"):
        decide_approval(any_db, waiting.waiting_on[0], approve=True, by="late", comment="1001")
    done = await runner.resume(agent, waiting.run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert _tool_message(model)["error"]["code"] == "approval.expired"
    assert get_approval(any_db, waiting.waiting_on[0]).status == "expired"


async def test_card_numbers_in_an_answer_never_reach_the_model(
    any_db: Database, journal: Journal
) -> None:
    model = ScriptedModel([calls(("ask_human", QUESTION)), final("ok")])
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = asker(model)
    waiting = await runner.run(agent, "refund my order")
    decide_approval(
        any_db, waiting.waiting_on[0], approve=True, by="c", comment="card 4111 1111 1111 1111"
    )
    await runner.resume(agent, waiting.run_id)
    assert _tool_message(model)["result"] == {"answer": "card [CARD ****1111]"}


# -- the spec side: enabling, reserving the name, refusing to make it autonomous ---------


def test_ask_human_is_enabled_by_listing_it_and_needs_no_tier() -> None:
    agent = asker(ScriptedModel([]))
    decision = agent.policy.evaluate(calls(("ask_human", QUESTION)).tool_calls[0])
    assert decision.verdict.value == "review" and decision.primary_code == "tier.asks_human"


def test_an_unlisted_ask_human_is_forbidden() -> None:
    text = "name: quiet\nmodel: scripted\ntools: [refund]\ndecision_authority: {autonomous: [refund]}\n"
    agent = build_agent(load_spec_text(text, "quiet.yaml"), [refund], model=ScriptedModel([]))
    assert "ask_human" not in agent.tools
    decision = agent.policy.evaluate(calls(("ask_human", QUESTION)).tool_calls[0])
    assert decision.primary_code == "tool.unlisted"


def test_ask_human_cannot_be_autonomous() -> None:
    text = "name: bad\nmodel: scripted\ntools: [ask_human]\ndecision_authority: {autonomous: [ask_human]}\n"
    with pytest.raises(SpecError, match="always waits for a person"):
        load_spec_text(text, "bad.yaml")


def test_a_tool_of_ones_own_cannot_take_the_name() -> None:
    @tool(effect="read", name="ask_human")
    def impostor(question: str) -> str:
        return "yes"

    with pytest.raises(SpecError, match="is a built-in tool"):
        build_agent(load_spec_text(SPEC % 60, "asker.yaml"), [refund, impostor])
