"""A Pydantic AI refund agent governed by steward through `steward.adapters.pydantic_ai`:
the real package, its own FunctionModel/TestModel, no network."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic import TypeAdapter
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import DeferredToolRequests
from pydantic_ai.usage import RequestUsage
from sqlalchemy import select

import steward
from steward.adapters.pydantic_ai import Governed, RunStopped
from steward.security.keys import Principal, Role
from steward.store.agents import set_agent_state
from steward.store.chain import verify_chain
from steward.store.keys import create_key
from steward.store.runs import get_run, read_journal
from steward.store.schema import cost_ledger

SPEC = """\
name: refund-agent
model: external
tools: [lookup_order, issue_refund]
decision_authority:
  autonomous: [lookup_order]
  requires_human_review: [issue_refund]
cost_controls:
  max_cost_per_run_usd: 0.01
"""

SWITCH_BITES = 1.1  # the kill switch is read through a one-second cache
LOOKUP = ("lookup_order", {"order_id": "10056"})
REFUND = ("issue_refund", {"order_id": "10056", "amount_usd": 40.0})
Turn = list[tuple[str, dict[str, Any]]] | str


class Crash(BaseException):
    """The program dies (a kill, not an exception it could handle)."""


@dataclass
class Shop:
    """What the agent's tools did, and what its model saw."""

    refunds: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # tool results as the model read them
    model_calls: int = 0
    on_lookup: Callable[[], Any] | None = None
    crash_on: str | None = None  # the model "process" dies before this final answer

    def model(self, *turns: Turn, usage: RequestUsage | None = None) -> FunctionModel:
        """The n-th model turn (counted over the whole history, so the same across a
        resume) makes turns[n]: tool calls, or the final text."""

        small = RequestUsage(input_tokens=50, output_tokens=10)

        def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            self.model_calls += 1
            last = messages[-1]
            if isinstance(last, ModelRequest):
                self.seen.extend(
                    f"{p.tool_name}: {p.model_response_str()}"
                    for p in last.parts
                    if isinstance(p, ToolReturnPart)
                )
            n = sum(isinstance(m, ModelResponse) for m in messages)
            turn = turns[min(n, len(turns) - 1)]
            if isinstance(turn, str):
                if turn == self.crash_on:
                    self.crash_on = None
                    raise Crash(f"killed before answering {turn!r}")
                return ModelResponse(
                    parts=[TextPart(turn)],
                    usage=usage or small,
                )
            return ModelResponse(
                parts=[ToolCallPart(name, args) for name, args in turn],
                usage=usage or small,
            )

        return FunctionModel(respond, model_name="gpt-4o-mini")

    def agent(self, model: Any, governed: Governed) -> Agent[None, str]:
        agent = Agent(model, capabilities=[governed])

        @agent.tool_plain
        async def lookup_order(order_id: str) -> dict[str, Any]:
            """Look an order up."""
            if self.on_lookup is not None:
                await self.on_lookup()
            return {"order_id": order_id, "total_usd": 40.0, "paid": True}

        @agent.tool_plain
        def issue_refund(order_id: str, amount_usd: float) -> dict[str, Any]:
            """Refund an order."""
            self.refunds.append({"order_id": order_id, "amount_usd": amount_usd})
            return {"refund_id": f"rf_{len(self.refunds)}", "amount_usd": amount_usd}

        @agent.tool_plain
        def delete_account(order_id: str) -> str:
            """Not in the spec: never runs."""
            self.deleted.append(order_id)
            return "deleted"

        return agent


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "refund.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'steward.db'}"


@pytest.fixture
async def st(db_url: str, specs: Path) -> AsyncIterator[steward.Steward]:
    async with steward.open(db_url, specs=specs) as opened:
        yield opened


def governed(st: steward.Steward) -> Governed:
    return Governed(
        st, "refund-agent", effects={"lookup_order": "read"}, price_as="openai:gpt-4o-mini"
    )


def reviewer(st: steward.Steward, name: str = "rita") -> Principal:
    row, _ = create_key(st.db, name=name, role=Role.REVIEWER, by="admin:test")
    return row.principal


def run_id_of(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelResponse) and message.metadata:
            return str(message.metadata["steward"]["run_id"])
    raise AssertionError("no governed response in the history")


def events_of(st: steward.Steward, run_id: str, kind: str) -> list[Any]:
    return [e for e in read_journal(st.db, run_id) if e.type == kind]


def chain_ok(st: steward.Steward) -> bool:
    with st.db.reader.connect() as connection:
        report = verify_chain(connection)
    return report.ok and report.checked > 0


async def test_allowed_calls_run_and_the_steward_run_finishes_with_the_answer(
    st: steward.Steward,
) -> None:
    shop = Shop()
    agent = shop.agent(shop.model([LOOKUP], "order 10056 is paid"), governed(st))
    result = await agent.run("is order 10056 paid?")
    assert result.output == "order 10056 is paid"
    assert shop.seen == ['lookup_order: {"order_id":"10056","total_usd":40.0,"paid":true}']
    run_id = run_id_of(result.all_messages())
    row = get_run(st.db, run_id)
    assert (row.status, row.output) == ("succeeded", "order 10056 is paid")
    assert row.steps == 3  # two model calls and one tool call
    assert chain_ok(st)
    with st.db.reader.connect() as connection:
        costs = connection.execute(select(cost_ledger).where(cost_ledger.c.run_id == run_id)).all()
    assert len(costs) == 2 and all(c.cost_usd > 0 for c in costs)


async def test_a_denied_call_never_runs_and_the_model_reads_the_reason(
    st: steward.Steward,
) -> None:
    shop = Shop()
    model = shop.model([("delete_account", {"order_id": "10056"})], "could not delete")
    result = await shop.agent(model, governed(st)).run("delete my account")
    assert shop.deleted == []
    assert len(shop.seen) == 1
    assert shop.seen[0].startswith(
        'delete_account: {"error":"steward denied this call (tool.unlisted)'
    )
    assert "not in agent 'refund-agent' tools" in shop.seen[0]
    assert result.output == "could not delete"
    assert get_run(st.db, run_id_of(result.all_messages())).status == "succeeded"


async def test_review_then_approve_resumes_and_runs_the_refund_once(
    st: steward.Steward,
) -> None:
    shop = Shop()
    gov = governed(st)
    agent = shop.agent(shop.model([LOOKUP], [REFUND], "refunded"), gov)
    first = await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    assert [c.tool_name for c in requests.approvals] == ["issue_refund"]
    meta = requests.metadata[requests.approvals[0].tool_call_id]["steward"]
    run_id = run_id_of(first.all_messages())
    assert meta["run_id"] == run_id and await st.run_status(run_id) == "waiting"
    assert shop.refunds == []

    await st.approvals.decide(meta["approval_id"], who=reviewer(st), approve=True)
    answers = await gov.decisions(requests, timeout=5)
    second = await agent.run(
        message_history=first.all_messages(), deferred_tool_results=answers,
        output_type=[str, DeferredToolRequests],
    )  # fmt: skip
    assert second.output == "refunded"
    assert shop.refunds == [{"order_id": "10056", "amount_usd": 40.0}]
    assert shop.seen[-1] == 'issue_refund: {"refund_id":"rf_1","amount_usd":40.0}'
    row = get_run(st.db, run_id)
    assert (row.status, row.output) == ("succeeded", "refunded")
    assert len(events_of(st, run_id, "run.started")) == 1  # one steward run throughout


async def test_governed_run_waits_for_the_person_and_resumes(st: steward.Steward) -> None:
    shop = Shop()
    gov = governed(st)
    agent = shop.agent(shop.model([REFUND], "refunded"), gov)

    async def person() -> None:
        while True:
            rows = await _pending_approvals(st)
            if rows:
                await st.approvals.decide(rows[0], who=reviewer(st), approve=True)
                return
            await asyncio.sleep(0.05)

    deciding = asyncio.create_task(person())
    result = await asyncio.wait_for(gov.run(agent, "refund order 10056", timeout=10), 20)
    await deciding
    assert result.output == "refunded"
    assert shop.refunds == [{"order_id": "10056", "amount_usd": 40.0}]


async def _pending_approvals(st: steward.Steward) -> list[str]:
    from steward.store.schema import approvals

    def read() -> list[str]:
        with st.db.reader.connect() as connection:
            rows = connection.execute(
                select(approvals.c.id).where(approvals.c.status == "pending")
            ).all()
        return [r.id for r in rows]

    return await asyncio.to_thread(read)


async def test_review_then_reject_never_runs_and_the_model_reads_why(
    st: steward.Steward,
) -> None:
    shop = Shop()
    gov = governed(st)
    agent = shop.agent(shop.model([REFUND], "no refund"), gov)
    first = await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
    assert isinstance(first.output, DeferredToolRequests)
    meta = first.output.metadata[first.output.approvals[0].tool_call_id]["steward"]
    await st.approvals.decide(
        meta["approval_id"], who=reviewer(st), approve=False, comment="order was never paid"
    )
    answers = await gov.decisions(first.output, timeout=5)
    second = await agent.run(message_history=first.all_messages(), deferred_tool_results=answers)
    assert second.output == "no refund"
    assert shop.refunds == []
    assert shop.seen == [
        "issue_refund: steward: a person rejected this call (reviewer:rita): order was never paid"
    ]
    assert get_run(st.db, meta["run_id"]).status == "succeeded"
    # the refusal is on the steward run too: the call ends denied, the run resumed
    journal = read_journal(st.db, meta["run_id"])
    decided = [e.event for e in journal if e.type == "gate.decided"]
    assert decided[-1].stage == "approval"
    assert decided[-1].decision.reasons[0].code == "approval.rejected"
    assert "run.resumed" in [e.type for e in journal]


async def test_edited_arguments_are_what_runs(st: steward.Steward) -> None:
    shop = Shop()
    gov = governed(st)
    agent = shop.agent(shop.model([REFUND], "partly refunded"), gov)
    first = await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
    assert isinstance(first.output, DeferredToolRequests)
    meta = first.output.metadata[first.output.approvals[0].tool_call_id]["steward"]
    edited = {"order_id": "10056", "amount_usd": 25.0}
    await st.approvals.decide(meta["approval_id"], who=reviewer(st), approve=True, arguments=edited)
    answers = await gov.decisions(first.output, timeout=5)
    await agent.run(message_history=first.all_messages(), deferred_tool_results=answers)
    assert shop.refunds == [edited]
    assert shop.seen[-1] == 'issue_refund: {"refund_id":"rf_1","amount_usd":25.0}'


async def test_the_kill_switch_stops_the_run_mid_way(st: steward.Steward) -> None:
    shop = Shop()

    async def kill() -> None:
        set_agent_state(st.db, "refund-agent", by="admin:ops", enabled=False, comment="incident")
        await asyncio.sleep(SWITCH_BITES)

    shop.on_lookup = kill
    agent = shop.agent(shop.model([LOOKUP], [REFUND], "refunded"), governed(st))
    with pytest.raises(RunStopped) as raised:
        await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
    assert raised.value.code == "agent.disabled"
    assert shop.refunds == []
    assert shop.model_calls == 1  # the model gets no turn after the switch bit
    rows = await _runs(st)
    assert [r.status for r in rows] == ["failed"]


async def _runs(st: steward.Steward) -> list[Any]:
    from steward.store.schema import runs

    def read() -> list[Any]:
        with st.db.reader.connect() as connection:
            return list(connection.execute(select(runs)).all())

    return await asyncio.to_thread(read)


async def test_the_frameworks_own_model_calls_exhaust_the_budget(st: steward.Steward) -> None:
    shop = Shop()
    # each call reports 10000 in / 1000 out of gpt-4o-mini = $0.0021; the run may spend $0.01
    model = shop.model([LOOKUP], usage=RequestUsage(input_tokens=10_000, output_tokens=1000))
    agent = shop.agent(model, governed(st))
    with pytest.raises(steward.BudgetExceeded) as raised:
        await agent.run("keep looking", model_settings={"max_tokens": 1000})
    assert "budget" in raised.value.code
    made = shop.model_calls
    assert 3 <= made <= 4  # reserved before each call: never a call the budget cannot cover
    rows = await _runs(st)
    assert [r.status for r in rows] == ["failed"]
    with st.db.reader.connect() as connection:
        spent = sum(c.cost_usd for c in connection.execute(select(cost_ledger)).all())
    assert spent == pytest.approx(0.0021 * made) and spent <= 0.01


async def test_a_restart_between_request_and_decision(db_url: str, specs: Path) -> None:
    shop = Shop()
    turns: tuple[Turn, ...] = ([LOOKUP], [REFUND], "refunded")
    # first process: the run ends waiting; the program keeps its history and requests
    async with steward.open(db_url, specs=specs) as first_st:
        agent = shop.agent(shop.model(*turns), governed(first_st))
        first = await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
        assert isinstance(first.output, DeferredToolRequests)
        saved_history = ModelMessagesTypeAdapter.dump_json(first.all_messages())
        saved_requests = TypeAdapter(DeferredToolRequests).dump_json(first.output)
    # a person decides in steward (console, API, CLI) while the program is down
    async with steward.open(db_url, specs=specs) as console:
        requests = TypeAdapter(DeferredToolRequests).validate_json(saved_requests)
        meta = requests.metadata[requests.approvals[0].tool_call_id]["steward"]
        await console.approvals.decide(meta["approval_id"], who=reviewer(console), approve=True)
    # second process: a new Steward, a new agent; resume from what was saved. It dies
    # (killed, not an exception it handles) right after the refund ran
    async with steward.open(db_url, specs=specs) as second_st:
        gov = governed(second_st)
        shop.crash_on = "refunded"
        agent = shop.agent(shop.model(*turns), gov)
        answers = await gov.decisions(requests, timeout=5)
        with pytest.raises(Crash):
            await agent.run(
                message_history=ModelMessagesTypeAdapter.validate_json(saved_history),
                deferred_tool_results=answers,
            )
        assert shop.refunds == [{"order_id": "10056", "amount_usd": 40.0}]
    # third process: resumes from the same saved state again: the refund is not repeated,
    # the model reads the result steward recorded
    async with steward.open(db_url, specs=specs) as third_st:
        gov = governed(third_st)
        agent = shop.agent(shop.model(*turns), gov)
        done = await agent.run(
            message_history=ModelMessagesTypeAdapter.validate_json(saved_history),
            deferred_tool_results=await gov.decisions(requests, timeout=5),
        )
        assert done.output == "refunded"
        assert shop.refunds == [{"order_id": "10056", "amount_usd": 40.0}]
        assert shop.seen[-1].startswith("issue_refund: ")  # steward's record of it
        assert json.loads(shop.seen[-1].removeprefix("issue_refund: ")) == {
            "refund_id": "rf_1", "amount_usd": 40.0,
        }  # fmt: skip
        row = get_run(third_st.db, meta["run_id"])
        assert row.status == "succeeded"
        assert chain_ok(third_st)
        # and once more after it finished: steward stops it, nothing runs
        with pytest.raises(RunStopped) as stopped:
            await shop.agent(shop.model(*turns), gov).run(
                message_history=ModelMessagesTypeAdapter.validate_json(saved_history),
                deferred_tool_results=await gov.decisions(requests, timeout=5),
            )
        assert stopped.value.code == "run.finished"
        assert shop.refunds == [{"order_id": "10056", "amount_usd": 40.0}]
    assert len(await _runs_of(db_url, specs)) == 1


async def _runs_of(db_url: str, specs: Path) -> list[Any]:
    async with steward.open(db_url, specs=specs) as st:
        return await _runs(st)


async def test_test_model_calls_every_tool_through_the_gate(st: steward.Steward) -> None:
    shop = Shop()
    agent = shop.agent(TestModel(call_tools=["lookup_order", "delete_account"]), governed(st))
    result = await agent.run("look it up")
    payload = json.loads(result.output)
    assert payload["lookup_order"]["order_id"] == "a"
    assert "tool.unlisted" in payload["delete_account"]
    assert shop.deleted == []


def test_the_refund_example_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "pydantic_ai_refund.py")],
        capture_output=True, text=True, timeout=120, cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"run_\w+ waiting: 'issue_refund' is requires_human_review", lines[0])
    assert "refunds executed: 1" in lines
    run_id = lines[0].split()[0]
    assert lines[-1] == f"{run_id} succeeded"


MCP_SERVER = '''\
import sys

try:
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2
except ImportError:
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1

server = Server("shop")


@server.tool()
def issue_refund(order_id: str, amount_usd: float) -> str:
    """Refund an order."""
    with open(sys.argv[1], "a", encoding="utf-8") as ledger:
        ledger.write(f"{order_id} {amount_usd}\\n")
    return f"refunded {order_id}"


if __name__ == "__main__":
    server.run()
'''


async def test_tools_from_an_mcp_server_cross_the_gate(st: steward.Steward, tmp_path: Path) -> None:
    """The MCP server's tool is governed like the agent's own: review, then exactly once."""
    pytest.importorskip(
        "fastmcp.client", reason="needs pydantic-ai-slim[mcp]", exc_type=ImportError
    )
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai.mcp import MCPToolset

    server, ledger = tmp_path / "server.py", tmp_path / "refunds.txt"
    server.write_text(MCP_SERVER, encoding="utf-8")
    mcp = MCPToolset(StdioTransport(sys.executable, [str(server), str(ledger)]))
    shop = Shop()
    gov = governed(st)
    agent = Agent(shop.model([REFUND], "refunded"), toolsets=[mcp], capabilities=[gov])
    async with agent:
        first = await agent.run("refund order 10056", output_type=[str, DeferredToolRequests])
        assert isinstance(first.output, DeferredToolRequests)
        assert not ledger.exists()  # the server was never called
        meta = first.output.metadata[first.output.approvals[0].tool_call_id]["steward"]
        await st.approvals.decide(meta["approval_id"], who=reviewer(st), approve=True)
        done = await agent.run(
            message_history=first.all_messages(),
            deferred_tool_results=await gov.decisions(first.output, timeout=5),
        )
    assert done.output == "refunded"
    assert ledger.read_text(encoding="utf-8") == "10056 40.0\n"
    assert shop.seen == ["issue_refund: refunded 10056"]
    assert get_run(st.db, meta["run_id"]).status == "succeeded"


async def test_a_streamed_model_request_is_reserved_and_settled(st: steward.Steward) -> None:
    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        for word in ("order ", "10056 ", "is ", "paid"):
            yield word

    agent = Agent(
        FunctionModel(stream_function=stream, model_name="gpt-4o-mini"),
        capabilities=[governed(st)],
    )
    async with agent.run_stream("is order 10056 paid?") as streamed:
        text = await streamed.get_output()
    assert text == "order 10056 is paid"
    rows = await _runs(st)
    assert len(rows) == 1
    with st.db.reader.connect() as connection:
        costs = connection.execute(select(cost_ledger)).all()
    assert len(costs) == 1 and costs[0].cost_usd > 0
    assert [r.status for r in await _runs(st)] == ["succeeded"]


async def test_only_steward_approves_a_program_that_approves_itself_gets_nothing_run(
    st: steward.Steward,
) -> None:
    shop = Shop()
    gov = governed(st)
    agent = shop.agent(shop.model([REFUND], "refunded"), gov)
    types = [str, DeferredToolRequests]
    first = await agent.run("refund order 10056", output_type=types)
    assert isinstance(first.output, DeferredToolRequests)
    # the program answers ToolApproved() itself, nobody decided in steward: still waiting
    again = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=first.output.build_results(approve_all=True),
        output_type=types,
    )
    assert isinstance(again.output, DeferredToolRequests)
    assert shop.refunds == []
    meta = first.output.metadata[first.output.approvals[0].tool_call_id]["steward"]
    assert await st.run_status(meta["run_id"]) == "waiting"
    # a person edits the call in steward; the program's plain ToolApproved() runs the edit
    edited = {"order_id": "10056", "amount_usd": 10.0}
    await st.approvals.decide(meta["approval_id"], who=reviewer(st), approve=True, arguments=edited)
    await agent.run(
        message_history=again.all_messages(),
        deferred_tool_results=again.output.build_results(approve_all=True),
        output_type=types,
    )
    assert shop.refunds == [edited]


async def test_a_wrong_effect_is_a_located_error(st: steward.Steward) -> None:
    with pytest.raises(ValueError, match=r"effects=\{'lookup_order': 'reed'\}.*must be one of"):
        Governed(st, "refund-agent", effects={"lookup_order": "reed"})
