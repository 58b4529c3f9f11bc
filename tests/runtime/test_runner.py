"""The agent loop: concurrency, hard bounds, escalation, waiting and resuming; on SQLite
and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from steward.core.errors import ConflictError, ModelError
from steward.core.events import RunStatus, ToolCallProposed
from steward.core.messages import ModelResponse, Source
from steward.engines.embedded import EmbeddedEngine
from steward.models.protocol import ModelRequest
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval, list_approvals
from steward.store.runs import get_run, read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: helper
model: scripted
prompt: You help.
tools: [nap, transfer, lookup]
decision_authority:
  autonomous: [nap, lookup]
  requires_human_review: [transfer]
limits: {max_steps: %d, max_run_seconds: %s}
escalation: {confidence_below: 0.6, to: humans}
"""

transfers: list[dict[str, Any]] = []


@tool(effect="read")
async def nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rested"


@tool(effect="write", keyed=True)
async def transfer(to: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    transfers.append({"to": to, "amount": amount, "key": ctx.idempotency_key})
    return {"sent": amount}


@tool(effect="read")
async def lookup(name: str) -> dict[str, str]:
    return {"name": name, "iban": "XX00"}


def agent(
    responses: list[ModelResponse],
    *,
    max_steps: int = 5,
    max_seconds: float = 10,
    model: Any = None,
) -> Any:
    loaded = load_spec_text(SPEC % (max_steps, max_seconds), "helper.yaml")
    return build_agent(loaded, [nap, transfer, lookup], model=model or ScriptedModel(responses))


@pytest.fixture
async def runner(any_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(any_db)
    yield Runner(EmbeddedEngine(any_db, journal))
    journal.close()


async def test_independent_calls_in_one_turn_run_concurrently(runner: Runner) -> None:
    naps = calls(*[("nap", {"seconds": 0.1}) for _ in range(5)])
    started = time.perf_counter()
    result = await runner.run(agent([naps, final("done")]), "rest five times")
    elapsed = time.perf_counter() - started
    assert result.status is RunStatus.SUCCEEDED
    assert elapsed < 0.35, f"5 x 100 ms tools took {elapsed:.3f}s; they should overlap"


async def test_max_steps_is_a_hard_bound(runner: Runner) -> None:
    loop = [calls(("lookup", {"name": "x"})) for _ in range(10)]
    result = await runner.run(agent(loop, max_steps=3), "loop forever")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "limits.max_steps")
    assert result.steps == 3


async def test_max_run_seconds_is_a_hard_bound(runner: Runner) -> None:
    slow = ScriptedModel([final("late")], delay=5)
    started = time.perf_counter()
    result = await runner.run(agent([], max_seconds=0.3, model=slow), "hurry")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "limits.max_run_seconds")
    assert time.perf_counter() - started < 2


async def test_low_confidence_escalates_with_the_reason(runner: Runner, any_db: Database) -> None:
    result = await runner.run(agent([final("not sure", confidence=0.4)]), "hmm")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "escalation.low_confidence")
    assert "0.40 is below 0.60" in result.reason and "humans" in result.reason
    assert get_run(any_db, result.run_id).status == "escalated"


async def test_a_failing_model_escalates_instead_of_hanging(runner: Runner) -> None:
    class Down:
        name = "down"

        async def respond(self, request: ModelRequest) -> ModelResponse:
            raise ModelError("provider unavailable", code="model.unavailable")

    result = await runner.run(agent([], model=Down()), "hello")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.unavailable")


async def test_review_waits_then_resumes_after_approval(runner: Runner, any_db: Database) -> None:
    transfers.clear()
    script = [
        calls(("lookup", {"name": "bob"})),
        calls(("transfer", {"to": "bob", "amount": 10})),
        final("sent"),
    ]
    helper = agent(script)
    waiting = await runner.run(helper, "send bob 10")
    assert waiting.status is RunStatus.WAITING and waiting.waiting_on
    assert get_run(any_db, waiting.run_id).status == "waiting"
    assert transfers == []
    [pending] = list_approvals(any_db)
    assert (pending.tool, pending.arguments) == ("transfer", {"to": "bob", "amount": 10})
    decide_approval(any_db, pending.id, approve=True, by="alice")
    done = await runner.resume(helper, waiting.run_id)
    assert (done.status, done.output) == (RunStatus.SUCCEEDED, "sent")
    assert len(transfers) == 1
    again = await runner.resume(helper, waiting.run_id)
    assert again.status is RunStatus.SUCCEEDED and len(transfers) == 1


async def test_rejected_call_is_reported_to_the_model(runner: Runner, any_db: Database) -> None:
    transfers.clear()
    model = ScriptedModel(
        [calls(("transfer", {"to": "eve", "amount": 99})), final("could not send")]
    )
    helper = agent([], model=model)
    waiting = await runner.run(helper, "send eve 99")
    decide_approval(any_db, waiting.waiting_on[0], approve=False, by="bob", comment="unknown payee")
    done = await runner.resume(helper, waiting.run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert transfers == []
    tool_message = model.requests[-1].messages[-1]
    assert "approval.rejected" in tool_message.content and "unknown payee" in tool_message.content


async def test_provenance_of_arguments_is_recorded(runner: Runner, any_db: Database) -> None:
    script = [
        calls(("lookup", {"name": "carol"})),
        calls(("lookup", {"name": "XX00"})),
        final("ok"),
    ]
    result = await runner.run(agent(script), "look up carol")
    proposed = [
        e.event
        for e in read_journal(any_db, result.run_id)
        if isinstance(e.event, ToolCallProposed)
    ]
    assert proposed[0].sources == {"name": Source.USER}
    assert proposed[1].sources == {"name": Source.TOOL}


async def test_card_numbers_in_the_input_never_reach_the_journal_or_model(
    runner: Runner, any_db: Database
) -> None:
    model = ScriptedModel([final("noted")])
    result = await runner.run(
        agent([], model=model), "my card 4111 1111 1111 1111 was charged twice"
    )
    assert "4111 1111" not in model.requests[0].messages[-1].content
    assert get_run(any_db, result.run_id).input == "my card [CARD ****1111] was charged twice"
    started = read_journal(any_db, result.run_id)[0].event
    assert started.redacted == ("pii.card_number",)  # type: ignore[union-attr]


async def test_an_approval_nobody_decides_expires_and_the_run_finishes(
    runner: Runner, any_db: Database
) -> None:
    transfers.clear()
    text = (SPEC % (5, 10)) + "approvals: {expires_after_seconds: 0.05}\n"
    model = ScriptedModel(
        [calls(("transfer", {"to": "bob", "amount": 5})), final("could not send")]
    )
    helper = build_agent(load_spec_text(text, "helper.yaml"), [nap, transfer, lookup], model=model)
    waiting = await runner.run(helper, "send bob 5")
    assert waiting.status is RunStatus.WAITING
    await asyncio.sleep(0.1)
    with pytest.raises(ConflictError, match="expired"):
        decide_approval(any_db, waiting.waiting_on[0], approve=True, by="late")
    done = await runner.resume(helper, waiting.run_id)
    assert done.status is RunStatus.SUCCEEDED and transfers == []
    assert "approval.expired" in model.requests[-1].messages[-1].content
    assert list_approvals(any_db, "expired")[0].id == waiting.waiting_on[0]


async def test_a_restarted_process_keeps_counting_rate_limits(any_db: Database) -> None:
    text = (SPEC % (5, 10)) + "rate_limits: {lookup: 2/hour}\n"

    def fresh() -> Any:  # a new agent and gate: nothing counted in memory
        model = ScriptedModel([calls(("lookup", {"name": "x"})), final("ok")])
        return build_agent(
            load_spec_text(text, "helper.yaml"), [nap, transfer, lookup], model=model
        )

    first = Journal(any_db)
    for _ in range(2):
        assert (await Runner(EmbeddedEngine(any_db, first)).run(fresh(), "look")).denials == ()
    first.close()
    second = Journal(any_db)  # "after a restart"
    result = await Runner(EmbeddedEngine(any_db, second)).run(fresh(), "look")
    second.close()
    assert result.denials == ("rate_limit.exceeded",)
