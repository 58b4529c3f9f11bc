"""Tool calls through the facade: executed, denied with reasons, never run twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

import steward
from steward.core.events import GateDecided
from steward.engines.embedded import EmbeddedEngine
from steward.store.chain import verify_chain
from steward.store.runs import get_run, read_journal
from steward.store.schema import cost_ledger

from .conftest import Ledger


async def test_an_allowed_call_runs_and_the_run_finishes_with_its_steps(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "what is order 10056?", tools=ledger.tools())
    outcome = await run.call("lookup_order", {"order_id": "10056"}, call_id="c1")
    assert outcome == steward.Executed(
        "c1", "lookup_order", {"order_id": "10056"}, {"order_id": "10056", "total_usd": 40.0}
    )
    assert await st.run_status(run.id) == "running"
    assert await run.finish("order 10056 totals $40", confidence=0.9) == "succeeded"
    row = get_run(st.db, run.id)
    assert (row.status, row.output, row.confidence) == ("succeeded", "order 10056 totals $40", 0.9)
    assert row.steps == 1


async def test_a_tool_the_spec_does_not_list_is_denied_and_never_runs(
    st: steward.Steward, ledger: Ledger
) -> None:
    ran: list[str] = []
    rogue = steward.external_tool("wipe_db", lambda: ran.append("x"), parameters={"type": "object"})
    run = await st.start_run("refund-agent", "hi", tools=[*ledger.tools(), rogue])
    outcome = await run.call("wipe_db", {}, call_id="c1")
    assert isinstance(outcome, steward.Denied)
    assert outcome.code == "tool.unlisted"
    assert "wipe_db" in outcome.message
    assert ran == []
    decided = [e.event for e in read_journal(st.db, run.id) if isinstance(e.event, GateDecided)]
    assert [d.decision.primary_code for d in decided] == ["tool.unlisted"]


async def test_a_listed_tool_the_program_did_not_bind_is_denied(st: steward.Steward) -> None:
    run = await st.start_run("refund-agent", "hi", tools=[])
    outcome = await run.call("lookup_order", {"order_id": "1"})
    assert isinstance(outcome, steward.Denied)
    assert outcome.code == "tool.unbound"


async def test_bad_arguments_are_denied_with_the_field_named(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "refund 10056", tools=ledger.tools())
    outcome = await run.call("lookup_order", {"order_id": 10056}, call_id="c1")
    assert isinstance(outcome, steward.Denied)
    assert outcome.code == "args.invalid"
    assert "order_id" in outcome.message
    missing = await run.call("lookup_order", {}, call_id="c2")
    assert isinstance(missing, steward.Denied)
    assert "order_id" in missing.message
    with pytest.raises(TypeError, match="dict"):
        await run.call("lookup_order", ["10056"])  # type: ignore[arg-type]


async def test_a_write_runs_at_most_once_per_call_id_across_a_restart(
    db_url: str, specs: Path, ledger: Ledger
) -> None:
    async with steward.open(db_url, specs=specs) as first:
        run = await first.start_run("refund-agent", "note it", tools=ledger.tools())
        done = await run.call("send_note", {"text": "refund approved"}, call_id="tc_1")
        assert isinstance(done, steward.Executed)
        again = await run.call("send_note", {"text": "refund approved"}, call_id="tc_1")
        assert again == done
        run_id = run.id
    async with steward.open(db_url, specs=specs) as second:
        attached = await second.attach(run_id, tools=ledger.tools())
        replayed = await attached.call("send_note", {"text": "refund approved"}, call_id="tc_1")
        assert replayed == done
        other = await attached.call("send_note", {"text": "second note"}, call_id="tc_2")
        assert isinstance(other, steward.Executed)
    assert ledger.notes == ["refund approved", "second note"]


async def test_a_call_id_names_one_call(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    await run.call("send_note", {"text": "one"}, call_id="c1")
    reused = await run.call("send_note", {"text": "two"}, call_id="c1")
    assert isinstance(reused, steward.Denied)
    assert reused.code == "call.id_reused"
    assert ledger.notes == ["one"]


async def test_a_finished_run_takes_no_more_calls(st: steward.Steward, ledger: Ledger) -> None:
    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    await run.finish("bye", confidence=1.0)
    late = await run.call("send_note", {"text": "late"})
    assert isinstance(late, steward.Denied)
    assert late.code == "run.finished"
    assert ledger.notes == []


async def test_low_confidence_escalates_as_in_the_built_in_runner(
    db_url: str, tmp_path: Path, ledger: Ledger
) -> None:

    spec = tmp_path / "careful.yaml"
    spec.write_text(
        "name: careful\nmodel: external\nescalation: {confidence_below: 0.8, to: ops}\n",
        encoding="utf-8",
    )
    async with steward.open(db_url, specs=spec) as st:
        run = await st.start_run("careful", "hi")
        assert await run.finish("maybe", confidence=0.5) == "escalated"
        assert get_run(st.db, run.id).reason_code == "escalation.low_confidence"


async def test_the_input_is_masked_and_every_decision_is_on_a_chain_that_verifies(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run(
        "refund-agent", "refund to card 4111 1111 1111 1111 please", tools=ledger.tools(),
        tags={"tenant": "acme"},
    )  # fmt: skip
    await run.call("lookup_order", {"order_id": "10056"})
    await run.call("issue_refund", {"order_id": "10056", "amount_usd": -1})
    await run.finish("done", confidence=0.9)
    row = get_run(st.db, run.id)
    assert "4111" not in row.input
    assert row.tags == {"tenant": "acme"}
    types = [e.type for e in read_journal(st.db, run.id)]
    assert types[0] == "run.started"
    assert "gate.decided" in types and "tool.succeeded" in types and types[-1] == "run.finished"
    with st.db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok, report.problems
    assert report.checked >= len(types)


async def test_tool_results_are_scanned_as_the_runner_scans_them(
    st: steward.Steward,
) -> None:
    def lookup_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id, "email": "ann@example.com"}

    tools = [steward.external_tool("lookup_order", lookup_order, effect="read")]
    run = await st.start_run("refund-agent", "hi", tools=tools)
    outcome = await run.call("lookup_order", {"order_id": "1"})
    assert isinstance(outcome, steward.Executed)
    assert "ann@example.com" not in json.dumps(outcome.result)


async def test_the_framework_model_calls_are_priced_and_counted(
    st: steward.Steward, ledger: Ledger
) -> None:
    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    async with run.model_call(
        "openai:gpt-4o-mini", max_output_tokens=500, max_input_tokens=2000
    ) as call:
        call.settle(input_tokens=1000, output_tokens=200)
    await run.record_model_call("openai:gpt-4o-mini", input_tokens=100, output_tokens=10,
                                latency_s=0.2)  # fmt: skip
    await run.finish("ok", confidence=1.0)
    with st.db.reader.connect() as connection:
        rows = connection.execute(
            select(cost_ledger.c.model, cost_ledger.c.cost_usd).where(
                cost_ledger.c.run_id == run.id
            )
        ).all()
    expected = (1000 * 0.15 + 200 * 0.60) / 1e6
    assert {model for model, _ in rows} == {"openai:gpt-4o-mini"}
    costs = sorted(cost for _, cost in rows)
    assert costs == [pytest.approx((100 * 0.15 + 10 * 0.60) / 1e6), pytest.approx(expected)]
    assert get_run(st.db, run.id).steps == 2


async def test_a_tool_that_fails_or_times_out_answers_failed(st: steward.Steward) -> None:
    async def slow_note(text: str) -> str:
        await asyncio.sleep(5)
        return "late"

    def broken_lookup(order_id: str) -> dict[str, str]:
        raise RuntimeError("orders db is down")

    tools = [
        steward.external_tool("send_note", slow_note, timeout=0.1),
        steward.external_tool("lookup_order", broken_lookup, effect="read"),
    ]
    run = await st.start_run("refund-agent", "hi", tools=tools)
    timed_out = await run.call("send_note", {"text": "x"}, call_id="n1")
    assert isinstance(timed_out, steward.Failed)
    assert (timed_out.code, timed_out.on_timeout, timed_out.unknown) == (
        "tool.timeout", "cancelled", True,
    )  # fmt: skip
    assert await run.call("send_note", {"text": "x"}, call_id="n1") == timed_out
    broken = await run.call("lookup_order", {"order_id": "1"})
    assert isinstance(broken, steward.Failed)
    assert broken.code == "tool.error" and "orders db is down" in broken.error
    assert not broken.unknown


async def test_the_built_in_runner_leaves_an_external_run_to_its_program(
    st: steward.Steward, ledger: Ledger
) -> None:
    from steward.runtime import Runner, build_agent

    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    agent = build_agent(st.spec("refund-agent"), ledger.tools())
    result = await Runner(EmbeddedEngine(st.db, st.journal)).resume(agent, run.id, "recovered")
    assert (result.status, result.reason_code) == ("running", "model.external")
    assert isinstance(await run.call("send_note", {"text": "still mine"}), steward.Executed)


async def test_a_run_cancelled_from_outside_takes_no_more_calls(
    st: steward.Steward, ledger: Ledger
) -> None:
    from steward.engines.cancel import cancel_run

    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    assert isinstance(await run.call("send_note", {"text": "one"}), steward.Executed)
    cancel_run(st.db, st.journal, run.id, by="reviewer:rita", reason="wrong customer")
    await asyncio.sleep(0.6)  # a run asks the store at most every half second
    stopped = await run.call("send_note", {"text": "two"})
    assert isinstance(stopped, steward.Denied) and stopped.code == "run.cancelled"
    assert "wrong customer" in stopped.message
    with pytest.raises(steward.StewardError):
        async with run.model_call("openai:gpt-4o-mini", max_input_tokens=10):
            pytest.fail("no model call in a cancelled run")
    assert await run.finish("done anyway", confidence=1.0) == "cancelled"
    assert await st.run_status(run.id) == "cancelled"
    assert ledger.notes == ["one"]


async def test_a_server_recovering_runs_leaves_external_runs_to_their_program(
    st: steward.Steward, ledger: Ledger
) -> None:
    from steward.engines.catalog import agent_for_run
    from steward.runtime import Runner

    run = await st.start_run("refund-agent", "hi", tools=ledger.tools())
    agent = agent_for_run(st.db, run.id)  # what a server without this program's tools builds
    result = await Runner(EmbeddedEngine(st.db, st.journal)).resume(
        agent, run.id, "recovered after a restart"
    )
    assert (result.status, result.reason_code) == ("running", "model.external")
    assert await st.run_status(run.id) == "running"


async def test_open_is_awaitable_and_refuses_what_it_cannot_govern(
    db_url: str, tmp_path: Path
) -> None:
    from steward.core.errors import NotFoundError, SpecError

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "builtin.yaml").write_text(
        "name: builtin\nmodel: rules\nrules: {}\n", encoding="utf-8"
    )
    st = await steward.open(db_url, specs=folder)
    try:
        with pytest.raises(steward.StewardError) as raised:
            await st.start_run("builtin", "hi")
        assert raised.value.code == "agent.not_external"
        with pytest.raises(NotFoundError, match="builtin"):
            await st.start_run("nobody", "hi")
    finally:
        await st.close()
    (folder / "broken.yaml").write_text("name: broken\nmodel: external\nlimits: {max_steps: 0}\n")
    with pytest.raises(SpecError) as bad:
        await steward.open(db_url, specs=folder)
    assert "broken.yaml:3:" in str(bad.value) and "limits.max_steps" in str(bad.value)
