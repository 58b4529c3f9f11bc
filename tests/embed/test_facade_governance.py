"""Every guarantee of the built-in runner, through the facade alone: kill switch,
autonomy mode, rate limits and budgets shared with the runner, approvals bound to the
exact call, decide-only, waiting for a person across instances."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import steward
from steward.core.agent_state import Autonomy
from steward.core.errors import PermissionDenied
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.security.keys import Principal, Role
from steward.spec import load_spec_text
from steward.store.agents import set_agent_state
from steward.store.keys import create_key
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

from .conftest import SPEC, Ledger

SWITCH_BITES = 1.1  # the kill switch and mode are read through a one-second cache


def reviewer(st: steward.Steward, name: str = "rita") -> Principal:
    row, _ = create_key(st.db, name=name, role=Role.REVIEWER, by="admin:test")
    return row.principal


REFUND = {"order_id": "10056", "amount_usd": 40}


async def test_the_kill_switch_stops_a_run_mid_way_and_new_runs(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "notes please", tools=ledger.tools())
    assert isinstance(await run.call("send_note", {"text": "one"}), steward.Executed)
    set_agent_state(st.db, "refund-agent", by="admin:ops", enabled=False, comment="incident")
    await asyncio.sleep(SWITCH_BITES)
    stopped = await run.call("send_note", {"text": "two"})
    assert isinstance(stopped, steward.Denied)
    assert stopped.code == "agent.disabled"
    with pytest.raises(steward.AgentDisabled):
        await st.start_run("refund-agent", "again", tools=ledger.tools())
    assert ledger.notes == ["one"]


async def test_the_kill_switch_stops_the_framework_s_model_calls(
    st: steward.Steward, ledger: Ledger
) -> None:
    """A disabled agent makes no more LLM calls through the facade: they cost money and
    feed the next proposal, so they stop with its tool calls, not at the next one."""
    run = await st.start_run("refund-agent", "notes please", tools=ledger.tools())
    async with run.model_call("openai:gpt-4o-mini", max_input_tokens=100) as call:
        call.settle(input_tokens=10, output_tokens=5)
    set_agent_state(st.db, "refund-agent", by="admin:ops", enabled=False, comment="incident")
    await asyncio.sleep(SWITCH_BITES)
    with pytest.raises(steward.AgentDisabled):
        async with run.model_call("openai:gpt-4o-mini", max_input_tokens=100):
            pytest.fail("the model call was made")


async def test_the_kill_switch_holds_an_approved_call(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    waiting = await run.call("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    await st.approvals.decide(waiting.approval_id, who=reviewer(st), approve=True)
    set_agent_state(st.db, "refund-agent", by="admin:ops", enabled=False)
    await asyncio.sleep(SWITCH_BITES)
    held = await run.resume("r1")
    assert isinstance(held, steward.Denied) and held.code == "agent.disabled"
    assert ledger.refunds == []


async def test_advisory_mode_sends_every_write_to_a_person(
    st: steward.Steward, ledger: Ledger
) -> None:
    set_agent_state(st.db, "refund-agent", by="admin:ops", mode=Autonomy.ADVISORY)
    run = await st.start_run("refund-agent", "note it", tools=ledger.tools())
    outcome = await run.call("send_note", {"text": "hello"})
    assert isinstance(outcome, steward.Waiting)
    assert "advisory" in outcome.reason
    assert isinstance(await run.call("lookup_order", {"order_id": "1"}), steward.Executed)
    assert ledger.notes == []
    assert await st.run_status(run.id) == "waiting"


BUILT_IN = """\
name: refund-agent
model: scripted
tools: [send_note]
decision_authority:
  autonomous: [send_note]
rate_limits:
  send_note: 2/hour
"""


async def test_rate_limits_are_shared_with_the_built_in_runner(
    st: steward.Steward, ledger: Ledger
) -> None:
    sent: list[str] = []

    @tool(effect="write", name="send_note")
    def built_in_note(text: str) -> str:
        sent.append(text)
        return "sent"

    script = [calls(("send_note", {"text": "a"})), calls(("send_note", {"text": "b"})), final("ok")]
    agent = build_agent(
        load_spec_text(BUILT_IN, "built_in.yaml"), [built_in_note], model=ScriptedModel(script)
    )
    result = await Runner(EmbeddedEngine(st.db, st.journal)).run(agent, "two notes")
    assert result.status == "succeeded" and sent == ["a", "b"]
    run = await st.start_run("refund-agent", "a third", tools=ledger.tools())
    third = await run.call("send_note", {"text": "c"})
    assert isinstance(third, steward.Denied)
    assert third.code == "rate_limit.exceeded"
    assert third.reasons[0].rule == "rate_limits.send_note"
    assert ledger.notes == []


async def test_the_framework_model_calls_exhaust_the_budget(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "think hard", tools=ledger.tools())
    made = 0
    with pytest.raises(steward.BudgetExceeded) as raised:
        for _ in range(10):
            # each reserves (10000 * 0.15 + 1000 * 0.60) / 1e6 = $0.0021 of $0.01 per run
            async with run.model_call(
                "openai:gpt-4o-mini", max_output_tokens=1000, max_input_tokens=10_000
            ) as call:
                made += 1
                call.settle(input_tokens=10_000, output_tokens=1000)
    assert made == 4  # 4 x $0.0021 = $0.0084; a fifth could reach $0.0105
    assert raised.value.code == "budget.run_exhausted"
    assert run.steps == 4


async def test_an_unpriced_model_cannot_be_bounded_under_a_budget(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    with pytest.raises(steward.BudgetExceeded) as raised:
        async with run.model_call("openai:some-private-model"):
            pytest.fail("the call must not be made")
    assert raised.value.code == "budget.unpriced"


async def test_review_then_approve_runs_the_exact_call_once(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    waiting = await run.call("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    assert await st.run_status(run.id) == "waiting"
    still = await run.resume("r1")
    assert isinstance(still, steward.Waiting) and ledger.refunds == []
    assert await st.run_status(run.id) == "waiting"  # still, until a person decides
    await st.approvals.decide(waiting.approval_id, who=reviewer(st), approve=True, comment="ok")
    decision = await st.wait_for_decision(waiting.approval_id, timeout=5)
    assert decision == steward.Approved(
        waiting.approval_id, REFUND, "reviewer:rita", "ok", run_id=run.id, call_id="r1"
    )
    done = await run.resume("r1")
    assert isinstance(done, steward.Executed)
    assert done.result == {"refund_id": "rf_1", "amount_usd": 40}
    assert await run.resume("r1") == done
    assert await run.call("issue_refund", REFUND, call_id="r1") == done
    assert ledger.refunds == [REFUND]
    assert await st.run_status(run.id) == "running"


async def test_edited_arguments_run_as_edited(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    waiting = await run.call("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    edited = {"order_id": "10056", "amount_usd": 25}
    await st.approvals.decide(
        waiting.approval_id, who=reviewer(st), approve=True, arguments=edited, comment="partial"
    )
    decision = await st.wait_for_decision(waiting.approval_id, timeout=5)
    assert isinstance(decision, steward.Approved) and decision.arguments == edited
    assert decision.edited
    done = await run.resume("r1")
    assert isinstance(done, steward.Executed)
    assert done.arguments == edited
    assert ledger.refunds == [edited]


async def test_an_edit_that_no_longer_fits_is_denied(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    waiting = await run.call("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    bad = {"order_id": "10056", "amount_usd": -5}
    await st.approvals.decide(waiting.approval_id, who=reviewer(st), approve=True, arguments=bad)
    denied = await run.resume("r1")
    assert isinstance(denied, steward.Denied) and denied.code == "args.invalid"
    assert "amount_usd" in denied.message
    assert ledger.refunds == []


async def test_a_rejection_is_denied_with_its_reason(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    waiting = await run.call("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    await st.approvals.decide(
        waiting.approval_id, who=reviewer(st), approve=False, comment="order was never paid"
    )
    decision = await st.wait_for_decision(waiting.approval_id, timeout=5)
    assert decision == steward.Rejected(
        waiting.approval_id, "reviewer:rita", "order was never paid", run_id=run.id, call_id="r1"
    )
    denied = await run.resume("r1")
    assert isinstance(denied, steward.Denied)
    assert denied.code == "approval.rejected"
    assert "order was never paid" in denied.message
    assert ledger.refunds == []


async def test_whoever_started_the_run_cannot_approve_its_calls(
    st: steward.Steward, ledger: Ledger
) -> None:
    row, token = create_key(st.db, name="sam", role=Role.ADMIN, by="admin:test")
    run = await st.start_run("refund-agent", "refund", tools=ledger.tools(), started_by=token)
    waiting = await run.call("issue_refund", REFUND)
    assert isinstance(waiting, steward.Waiting)
    with pytest.raises(PermissionDenied) as raised:
        await st.approvals.decide(waiting.approval_id, who=row.principal, approve=True)
    assert raised.value.code == "auth.separation_of_duties"
    with pytest.raises(PermissionDenied):
        await st.start_run("refund-agent", "x", started_by="stw_not_a_key")
    viewer_row, viewer_token = create_key(st.db, name="vic", role=Role.VIEWER, by="admin:test")
    with pytest.raises(PermissionDenied):
        await st.start_run("refund-agent", "x", started_by=viewer_token)
    del viewer_row


async def test_an_approved_call_runs_once_across_restarts(
    db_url: str, specs: Path, ledger: Ledger
) -> None:
    async with steward.open(db_url, specs=specs) as first:
        run = await first.start_run("refund-agent", "refund 10056", tools=ledger.tools())
        waiting = await run.call("issue_refund", REFUND, call_id="r1")
        assert isinstance(waiting, steward.Waiting)
        assert await (await first.attach(run.id)).pending() == [waiting]
        await first.approvals.decide(waiting.approval_id, who=reviewer(first), approve=True)
    async with steward.open(db_url, specs=specs) as second:
        attached = await second.attach(run.id, tools=ledger.tools())
        assert await attached.pending() == []  # decided: nothing waits any more
        done = await attached.resume("r1")
        assert isinstance(done, steward.Executed)
    async with steward.open(db_url, specs=specs) as third:
        again = await third.attach(run.id, tools=ledger.tools())
        assert await again.resume("r1") == done
        assert await again.decide("issue_refund", REFUND, call_id="r1") == done
    assert ledger.refunds == [REFUND]


async def test_decide_only_allows_once_and_records_the_framework_result(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "note it", tools=ledger.tools())
    verdict = await run.decide("send_note", {"text": "hi"}, call_id="n1")
    assert verdict == steward.Allowed("n1", "send_note", {"text": "hi"})
    assert ledger.notes == []  # decide-only never runs the tool
    recorded = await run.record_result("n1", "sent by the framework")
    assert recorded == steward.Executed("n1", "send_note", {"text": "hi"}, "sent by the framework")
    assert await run.decide("send_note", {"text": "hi"}, call_id="n1") == recorded
    assert await run.record_result("n1", "again") == recorded


async def test_decide_only_never_allows_a_write_twice(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "note it", tools=ledger.tools())
    assert isinstance(await run.decide("send_note", {"text": "hi"}, call_id="n1"), steward.Allowed)
    second = await run.decide("send_note", {"text": "hi"}, call_id="n1")
    assert isinstance(second, steward.Failed) and second.unknown
    assert second.code == "tool.outcome_unknown"
    failed = await run.record_result("n1", error=RuntimeError("smtp down"))
    assert isinstance(failed, steward.Failed) and "smtp down" in failed.error
    read = await run.decide("lookup_order", {"order_id": "1"}, call_id="l1")
    assert isinstance(read, steward.Allowed)
    assert isinstance(
        await run.decide("lookup_order", {"order_id": "1"}, call_id="l1"), steward.Allowed
    )


async def test_decide_only_through_a_review(st: steward.Steward, ledger: Ledger) -> None:
    declared = steward.external_tool(
        "issue_refund", parameters={"type": "object", "properties": {
            "order_id": {"type": "string"}, "amount_usd": {"type": "number"}}}
    )  # fmt: skip
    run = await st.start_run("refund-agent", "refund", tools=[declared])
    waiting = await run.decide("issue_refund", REFUND, call_id="r1")
    assert isinstance(waiting, steward.Waiting)
    edited = {"order_id": "10056", "amount_usd": 30}
    await st.approvals.decide(waiting.approval_id, who=reviewer(st), approve=True, arguments=edited)
    allowed = await run.resume("r1", execute=False)
    assert allowed == steward.Allowed("r1", "issue_refund", edited)
    done = await run.record_result("r1", {"refund_id": "fw_1"})
    assert done == steward.Executed("r1", "issue_refund", edited, {"refund_id": "fw_1"})
    with pytest.raises(TypeError, match="decide"):
        await run.call("issue_refund", REFUND, call_id="r2")


async def test_a_decision_made_by_another_instance_wakes_the_waiter(
    db_url: str, specs: Path, ledger: Ledger
) -> None:
    async with (
        steward.open(db_url, specs=specs) as program,
        steward.open(db_url, specs=specs) as console,
    ):
        run = await program.start_run("refund-agent", "refund 10056", tools=ledger.tools())
        waiting = await run.call("issue_refund", REFUND, call_id="r1")
        assert isinstance(waiting, steward.Waiting)
        with pytest.raises(TimeoutError):
            await program.wait_for_decision(waiting.approval_id, timeout=0.3)
        waiter = asyncio.create_task(program.wait_for_decision(waiting.approval_id, timeout=10))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await console.approvals.decide(waiting.approval_id, who=reviewer(console), approve=True)
        decision = await asyncio.wait_for(waiter, 5)
        assert isinstance(decision, steward.Approved)
        assert isinstance(await run.resume("r1"), steward.Executed)
    assert ledger.refunds == [REFUND]


async def test_an_expired_request_answers_expired_and_the_call_is_denied(
    db_url: str, tmp_path: Path, ledger: Ledger
) -> None:

    spec = tmp_path / "short.yaml"
    spec.write_text(SPEC + "approvals:\n  expires_after_seconds: 0.2\n", encoding="utf-8")
    async with steward.open(db_url, specs=spec) as st:
        run = await st.start_run("refund-agent", "refund", tools=ledger.tools())
        waiting = await run.call("issue_refund", REFUND, call_id="r1")
        assert isinstance(waiting, steward.Waiting)
        decision = await st.wait_for_decision(waiting.approval_id, timeout=5)
        assert isinstance(decision, steward.Rejected) and decision.status == "expired"
        denied = await run.resume("r1")
        assert isinstance(denied, steward.Denied) and denied.code == "approval.expired"
    assert ledger.refunds == []


async def test_a_result_that_is_not_json_is_refused_before_it_is_recorded(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "note it", tools=ledger.tools())
    assert isinstance(await run.decide("send_note", {"text": "hi"}, call_id="n1"), steward.Allowed)
    with pytest.raises(TypeError, match="not JSON"):
        await run.record_result("n1", object())
    done = await run.record_result("n1", {"sent": True})
    assert isinstance(done, steward.Executed) and done.result == {"sent": True}
