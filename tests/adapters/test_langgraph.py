"""steward.adapters.langgraph with the real LangGraph: every tool call of the graph crosses
steward's gate, a review is LangGraph's own interrupt, the graph's LLM calls are budgeted.

The model is LangChain's GenericFakeChatModel (scripted AIMessages with tool calls and
usage); no network. Tools count their executions, so "exactly once" is checked, not
assumed.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition

import steward
from steward.adapters import langgraph as lg
from steward.adapters.langgraph import approvals, attach, declare_tools, govern, resume_command
from steward.core.events import ModelResponded
from steward.security.keys import Principal, Role
from steward.store.agents import set_agent_state
from steward.store.runs import read_journal

SPEC = """
name: refund-agent
model: external
tools: [lookup_order, issue_refund]
decision_authority:
  autonomous: [lookup_order, issue_refund]
  forbidden: [delete_customer]
conditions:
  - id: refund-over-100
    tool: issue_refund
    when: args.amount_usd > 100.0
    then: requires_human_review
    reason: Refunds over $100 need a person.
  - id: refund-over-500
    tool: issue_refund
    when: args.amount_usd > 500.0
    then: forbidden
    reason: Refunds over $500 are decided by finance.
cost_controls:
  max_cost_per_run_usd: {budget}
"""

MODEL = "openai:gpt-4o-mini"
ROOT = Path(__file__).resolve().parents[2]


class Shop:
    """The side effects: every executed refund lands here (then `after_refund` runs)."""

    def __init__(self, after_refund: Callable[[], Awaitable[None]] | None = None) -> None:
        self.refunds: list[tuple[str, float]] = []
        self.after_refund = after_refund

    def tools(self) -> list[BaseTool]:
        @tool
        def lookup_order(order_id: str) -> dict[str, Any]:
            """Look an order up."""
            return {"order_id": order_id, "total_usd": 80.0, "status": "delivered"}

        @tool
        async def issue_refund(order_id: str, amount_usd: float) -> str:
            """Refund part or all of an order."""
            self.refunds.append((order_id, amount_usd))
            if self.after_refund is not None:
                await self.after_refund()
            return f"refunded ${amount_usd:.2f} on order {order_id}"

        @tool
        def delete_customer(email: str) -> str:
            """Erase a customer's data."""
            raise AssertionError("a forbidden tool ran")

        return [lookup_order, issue_refund, delete_customer]


class FakeToolModel(GenericFakeChatModel):
    """LangChain's fake chat model, able to be bound to tools (it ignores them): the
    script decides which tool calls it makes."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeToolModel:
        return self

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return await super()._agenerate(messages, *args, **kwargs)


def calls(*items: tuple[str, dict[str, Any], str], usage: int = 100) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in items],
        usage_metadata={"input_tokens": usage, "output_tokens": usage, "total_tokens": 2 * usage},
    )


def answer(text: str, usage: int = 100) -> AIMessage:
    return AIMessage(
        content=text,
        usage_metadata={"input_tokens": usage, "output_tokens": usage, "total_tokens": 2 * usage},
    )


def fake_model(*script: AIMessage) -> FakeToolModel:
    return FakeToolModel(messages=iter(script), seen=[])


def build(model: Any, tools: Any, checkpointer: Any) -> Any:
    """A plain LangGraph agent: model node, ToolNode, loop until no tool calls."""

    async def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.bind_tools([]).ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def tools_only(tools: ToolNode) -> Any:
    """A graph of just the tool node (a ToolNode runs inside a graph)."""
    graph = StateGraph(MessagesState)
    graph.add_node("tools", tools)
    graph.add_edge(START, "tools")
    return graph.compile()


def write_spec(directory: Path, budget: float = 1.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "refund-agent.yaml").write_text(SPEC.format(budget=budget), encoding="utf-8")
    return directory


@pytest.fixture
async def st(tmp_path: Path) -> AsyncIterator[steward.Steward]:
    async with await steward.open(
        f"sqlite:///{tmp_path / 'steward.db'}", specs=write_spec(tmp_path / "agents")
    ) as opened:
        yield opened


CONFIG = {"configurable": {"thread_id": "thread-1"}}
REVIEWER = Principal("key-r", "principal-r", "rita", Role.REVIEWER)


async def approve(
    st: steward.Steward, approval_id: str, arguments: dict[str, Any] | None = None
) -> None:
    """A person approves in steward (what the console, API and CLI call)."""
    await st.approvals.decide(approval_id, who=REVIEWER, approve=True, arguments=arguments)


async def reject(st: steward.Steward, approval_id: str, comment: str) -> None:
    await st.approvals.decide(approval_id, who=REVIEWER, approve=False, comment=comment)


async def kill(st: steward.Steward, agent: str) -> None:
    """The operator's kill switch (as the server does: store, then the shared cache)."""
    set_agent_state(st.db, agent, by="admin:ops", enabled=False, on_commit=st.journal.publish)
    st._states.forget(agent)


async def start(st: steward.Steward, shop: Shop, text: str) -> steward.Run:
    return await st.start_run("refund-agent", text, tools=declare_tools(shop.tools()))


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


async def test_allowed_calls_run_once_and_the_model_calls_are_recorded(st: steward.Steward) -> None:
    shop = Shop()
    script = fake_model(
        calls(("lookup_order", {"order_id": "10056"}, "c1")),
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 40.0}, "c2")),
        answer("Refunded $40."),
    )
    run, model, tools = await lg.start(
        st, "refund-agent", "refund $40 on order 10056", script, shop.tools(), model_id=MODEL
    )
    result = await build(model, tools, InMemorySaver()).ainvoke(
        {"messages": [("user", "refund $40 on order 10056")]}, CONFIG
    )
    assert result["messages"][-1].content == "Refunded $40."
    assert shop.refunds == [("10056", 40.0)]
    assert [m.status for m in tool_messages(result)] == ["success", "success"]
    await run.finish("Refunded $40.", confidence=0.9)
    assert await st.run_status(run.id) == "succeeded"
    responded = [e.event for e in read_journal(st.db, run.id) if e.type == "model.responded"]
    assert len(responded) == 3  # every LLM call of the graph is on the run's record
    assert all(isinstance(e, ModelResponded) for e in responded)
    usages = [e.response.usage for e in responded if isinstance(e, ModelResponded)]
    assert [(u.input_tokens, u.output_tokens) for u in usages] == [(100, 100)] * 3
    assert all(u.cost_usd > 0 for u in usages)  # priced as openai:gpt-4o-mini
    assert run.steps == 5  # 3 model calls + 2 tool calls


async def test_denied_call_never_runs_and_the_model_sees_the_reason(st: steward.Steward) -> None:
    shop = Shop()
    model_obj = fake_model(
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 900.0}, "c1")),
        calls(("delete_customer", {"email": "a@example.com"}, "c2")),
        answer("I can't do that."),
    )
    run = await start(st, shop, "refund $900")
    model, tools = govern(run, model_obj, shop.tools(), model_id=MODEL)
    result = await build(model, tools, InMemorySaver()).ainvoke(
        {"messages": [("user", "refund $900")]}, CONFIG
    )
    refused, unknown = tool_messages(result)
    assert refused.status == "error" and "Refunds over $500 are decided by finance" in str(
        refused.content
    )
    assert unknown.status == "error" and "steward denied" in str(unknown.content)
    assert shop.refunds == []
    # the model's next call saw the denial in its input
    assert any("decided by finance" in str(m.content) for m in model_obj.seen[1])


async def test_review_pauses_the_graph_and_an_approval_resumes_it_exactly_once(
    st: steward.Steward,
) -> None:
    shop = Shop()
    run = await start(st, shop, "refund $250 on order 10056")
    model, tools = govern(run, fake_model(
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 250.0}, "c1")),
        answer("Refunded $250."),
    ), shop.tools(), model_id=MODEL)  # fmt: skip
    graph = build(model, tools, InMemorySaver())
    paused = await graph.ainvoke({"messages": [("user", "refund $250")]}, CONFIG)
    (request,) = approvals(paused)
    assert (request.tool, request.call_id, request.run_id) == ("issue_refund", "c1", run.id)
    assert request.arguments == {"order_id": "10056", "amount_usd": 250.0}
    assert shop.refunds == []
    assert await st.run_status(run.id) == "waiting"

    # resumed before anyone decided: it pauses again, nothing runs
    again = await graph.ainvoke(resume_command(paused), CONFIG)
    assert [r.approval_id for r in approvals(again)] == [request.approval_id]
    assert shop.refunds == []

    await approve(st, request.approval_id)
    decision = await st.wait_for_decision(request.approval_id, timeout=5.0)
    assert isinstance(decision, steward.Approved)
    done = await graph.ainvoke(resume_command(again), CONFIG)
    assert done["messages"][-1].content == "Refunded $250."
    assert shop.refunds == [("10056", 250.0)]
    assert approvals(done) == []


@pytest.mark.parametrize("prebuilt", [False, True], ids=["one-tool-task", "send-per-call"])
async def test_two_reviews_in_one_turn_each_run_once(st: steward.Steward, prebuilt: bool) -> None:
    """Two calls needing review in one model turn: in one ToolNode task (a plain graph)
    the pauses surface one after the other; with create_react_agent (one task per call)
    together. Either way each approved call runs once and the rest never runs twice."""
    shop = Shop()
    model, tools = govern(await start(st, shop, "two refunds"), fake_model(
        calls(("issue_refund", {"order_id": "1", "amount_usd": 200.0}, "c1"),
              ("issue_refund", {"order_id": "2", "amount_usd": 300.0}, "c2"),
              ("lookup_order", {"order_id": "3"}, "c3")),
        answer("Both refunded."),
    ), shop.tools(), model_id=MODEL)  # fmt: skip
    if prebuilt:
        with pytest.warns(Warning, match="create_react_agent"):
            graph = create_react_agent(model, tools, checkpointer=InMemorySaver())
    else:
        graph = build(model, tools, InMemorySaver())
    result = await graph.ainvoke({"messages": [("user", "two refunds")]}, CONFIG)
    decided: list[str] = []
    for _ in range(4):
        pending = approvals(result)
        if not pending:
            break
        for request in pending:
            if request.approval_id not in decided:
                await approve(st, request.approval_id)
                decided.append(request.approval_id)
        result = await graph.ainvoke(resume_command(result), CONFIG)
    assert approvals(result) == [] and len(decided) == 2
    assert result["messages"][-1].content == "Both refunded."
    assert sorted(shop.refunds) == [("1", 200.0), ("2", 300.0)]


async def test_review_rejected_never_runs_and_the_model_sees_why(st: steward.Steward) -> None:
    shop = Shop()
    model_obj = fake_model(
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 250.0}, "c1")),
        answer("A colleague declined the refund."),
    )
    run = await start(st, shop, "refund $250")
    model, tools = govern(run, model_obj, shop.tools(), model_id=MODEL)
    graph = build(model, tools, InMemorySaver())
    paused = await graph.ainvoke({"messages": [("user", "refund $250")]}, CONFIG)
    (request,) = approvals(paused)
    await reject(st, request.approval_id, "order was already refunded")
    assert isinstance(
        await st.wait_for_decision(request.approval_id, timeout=5.0), steward.Rejected
    )
    done = await graph.ainvoke(resume_command(paused), CONFIG)
    (message,) = tool_messages(done)
    assert message.status == "error" and "already refunded" in str(message.content)
    assert shop.refunds == []


async def test_edited_arguments_are_what_runs(st: steward.Steward) -> None:
    shop = Shop()
    run = await start(st, shop, "refund $250")
    model, tools = govern(run, fake_model(
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 250.0}, "c1")),
        answer("Refunded."),
    ), shop.tools(), model_id=MODEL)  # fmt: skip
    graph = build(model, tools, InMemorySaver())
    paused = await graph.ainvoke({"messages": [("user", "refund $250")]}, CONFIG)
    (request,) = approvals(paused)
    await approve(st, request.approval_id, arguments={"order_id": "10056", "amount_usd": 80.0})
    done = await graph.ainvoke(resume_command(paused), CONFIG)
    assert shop.refunds == [("10056", 80.0)]
    (message,) = tool_messages(done)
    assert "80" in str(message.content) and "changed the arguments" in str(message.content)


async def test_kill_switch_mid_run_stops_the_graph_before_its_next_model_call(
    st: steward.Steward,
) -> None:
    async def operator_kills() -> None:  # right after the first refund
        await kill(st, "refund-agent")

    shop = Shop(after_refund=operator_kills)
    run = await start(st, shop, "refund twice")
    model_obj = fake_model(
        calls(("issue_refund", {"order_id": "1", "amount_usd": 10.0}, "c1")),
        calls(("issue_refund", {"order_id": "2", "amount_usd": 10.0}, "c2")),
        answer("never reached"),
    )
    model, tools = govern(run, model_obj, shop.tools(), model_id=MODEL)
    with pytest.raises(steward.AgentDisabled):
        await build(model, tools, InMemorySaver()).ainvoke(
            {"messages": [("user", "refund twice")]}, CONFIG
        )
    assert shop.refunds == [("1", 10.0)]
    assert len(model_obj.seen) == 1  # no model call after the switch either


async def test_a_model_that_reports_no_usage_is_charged_its_bound(st: steward.Steward) -> None:
    shop = Shop()
    run = await start(st, shop, "hello")
    silent = FakeToolModel(messages=iter([AIMessage(content="Hi.")]))  # no usage_metadata
    model = lg.govern_model(run, silent, model_id=MODEL, max_output_tokens=300)
    assert (await model.ainvoke("hello")).content == "Hi."
    (event,) = [e.event for e in read_journal(st.db, run.id) if e.type == "model.responded"]
    assert isinstance(event, ModelResponded)
    usage = event.response.usage
    assert usage.estimated and usage.output_tokens == 300 and usage.cost_usd > 0
    # the input bound is the prompt's bytes (plus a margin), not the model's whole window
    assert 0 < usage.input_tokens < 100


async def test_budget_exhausted_by_the_graphs_own_llm_calls(tmp_path: Path) -> None:
    shop = Shop()
    async with await steward.open(
        f"sqlite:///{tmp_path / 'steward.db'}", specs=write_spec(tmp_path / "agents", budget=0.01)
    ) as st:
        run = await start(st, shop, "look it up")
        model_obj = fake_model(
            # 20k output tokens at $0.60/M = $0.012: the first call spends the budget
            calls(("lookup_order", {"order_id": "1"}, "c1"), usage=20_000),
            answer("never reached"),
        )
        model, tools = govern(run, model_obj, shop.tools(), model_id=MODEL, max_output_tokens=1000)
        with pytest.raises(steward.BudgetExceeded):
            await build(model, tools, InMemorySaver()).ainvoke(
                {"messages": [("user", "look it up")]}, CONFIG
            )
        assert len(model_obj.seen) == 1  # the second call was refused before it was made


async def test_restart_between_request_and_decision(tmp_path: Path) -> None:
    """The program stops while the graph waits; a new process (a new Steward, a new
    checkpointer on the same file) finds the pause, and the call runs once."""
    shop = Shop()
    db = f"sqlite:///{tmp_path / 'steward.db'}"
    specs = write_spec(tmp_path / "agents")
    checkpoints = str(tmp_path / "checkpoints.sqlite")
    script = (
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 250.0}, "c1")),
        answer("Refunded $250."),
    )
    async with (
        await steward.open(db, specs=specs) as st,
        AsyncSqliteSaver.from_conn_string(checkpoints) as saver,
    ):
        run = await start(st, shop, "refund $250")
        model, tools = govern(run, fake_model(*script), shop.tools(), model_id=MODEL)
        paused = await build(model, tools, saver).ainvoke(
            {"messages": [("user", "refund $250")]}, CONFIG
        )
        (request,) = approvals(paused)

    async with await steward.open(db, specs=specs) as st:  # a person decides meanwhile
        await approve(st, request.approval_id)

    async with (
        await steward.open(db, specs=specs) as st,
        AsyncSqliteSaver.from_conn_string(checkpoints) as saver,
    ):
        # the new process knows only the thread id: the pause names the run
        # the graph's shape is enough to read its state; nothing runs here
        snapshot = await build(fake_model(), ToolNode(shop.tools()), saver).aget_state(CONFIG)
        (pending,) = approvals(snapshot)
        run, model, tools = await attach(
            st, pending.run_id, fake_model(script[1]), shop.tools(), model_id=MODEL
        )
        graph = build(model, tools, saver)
        done = await graph.ainvoke(resume_command(snapshot), CONFIG)
        assert done["messages"][-1].content == "Refunded $250."
        assert shop.refunds == [("10056", 250.0)]


async def test_a_replayed_call_returns_the_recorded_result(st: steward.Steward) -> None:
    """The same tool-call id through the governed node twice (a node re-run after a crash
    between the tool and the checkpoint): the tool runs once."""
    shop = Shop()
    run = await start(st, shop, "refund $40")
    _, tools = govern(run, fake_model(), shop.tools(), model_id=MODEL)
    message = calls(("issue_refund", {"order_id": "7", "amount_usd": 40.0}, "c9"))
    graph = tools_only(tools)
    first = await graph.ainvoke({"messages": [message]})
    second = await graph.ainvoke({"messages": [message]})
    assert shop.refunds == [("7", 40.0)]
    assert first["messages"][-1].content == second["messages"][-1].content


async def test_a_write_cut_off_mid_way_is_never_run_again(st: steward.Steward) -> None:
    """The graph is cancelled while a write runs: steward records its outcome as unknown,
    and the same call id (a resumed or restarted graph) is refused, not run twice; a
    tool declared "read" may run again."""
    started: list[str] = []
    forever = asyncio.Event()
    running = asyncio.Event()

    @tool
    async def issue_refund(order_id: str, amount_usd: float) -> str:
        """Refund (hangs)."""
        started.append(order_id)
        running.set()
        await forever.wait()
        return "refunded"

    @tool
    async def lookup_order(order_id: str) -> str:
        """Look up (hangs the first time)."""
        started.append(f"lookup {order_id}")
        if len(started) < 3:
            running.set()
            await forever.wait()
        return f"order {order_id}"

    toolset = [issue_refund, lookup_order]
    run = await st.start_run(
        "refund-agent", "refund", tools=declare_tools(toolset, effects={"lookup_order": "read"})
    )
    graph = tools_only(govern(run, fake_model(), toolset).tools)
    write = calls(("issue_refund", {"order_id": "1", "amount_usd": 10.0}, "w1"))
    read = calls(("lookup_order", {"order_id": "2"}, "r1"))
    for message in (write, read):
        running.clear()
        task = asyncio.ensure_future(graph.ainvoke({"messages": [message]}))
        await asyncio.wait_for(running.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    again = await graph.ainvoke({"messages": [write]})
    assert again["messages"][-1].status == "error" and "unknown" in str(
        again["messages"][-1].content
    )
    reread = await graph.ainvoke({"messages": [read]})
    assert reread["messages"][-1].content == "order 2"
    assert started == ["1", "lookup 2", "lookup 2"]  # the write ran once; the read again


async def test_prebuilt_react_agent_and_an_existing_tool_node(st: steward.Steward) -> None:
    """create_react_agent takes the governed ToolNode as its tools; an existing ToolNode
    keeps its own interceptor, which runs around the governed call."""
    shop = Shop()
    seen: list[str] = []

    async def logging_interceptor(request: Any, execute: Any) -> Any:
        seen.append(request.tool_call["name"])
        return await execute(request)

    run = await start(st, shop, "refund $250")
    existing = ToolNode(shop.tools(), awrap_tool_call=logging_interceptor)
    model, tools = govern(run, fake_model(
        calls(("issue_refund", {"order_id": "10056", "amount_usd": 250.0}, "c1")),
        answer("Refunded."),
    ), existing, model_id=MODEL)  # fmt: skip
    with pytest.warns(Warning, match="create_react_agent"):
        agent = create_react_agent(model, tools, checkpointer=InMemorySaver())
    paused = await agent.ainvoke({"messages": [("user", "refund $250")]}, CONFIG)
    (request,) = approvals(paused)
    await approve(st, request.approval_id)
    done = await agent.ainvoke(resume_command(await agent.aget_state(CONFIG)), CONFIG)
    assert done["messages"][-1].content == "Refunded."
    assert shop.refunds == [("10056", 250.0)]
    assert seen == ["issue_refund", "issue_refund"]  # paused once, then resumed


async def test_tools_from_an_mcp_server_are_governed(st: steward.Steward) -> None:
    """Tools loaded from an MCP server (langchain-mcp-adapters, in-memory session): the
    allowed call reaches the server once, the forbidden one never does."""
    mcp_server = pytest.importorskip("mcp.server.fastmcp")
    memory = pytest.importorskip("mcp.shared.memory")
    adapters = pytest.importorskip(
        "langchain_mcp_adapters.tools",
        reason="langchain-mcp-adapters 0.3 needs mcp<2; dev has mcp 2",
    )
    served: list[tuple[str, float]] = []
    server = mcp_server.FastMCP("shop")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return f"order {order_id}: delivered"

    @server.tool()
    def issue_refund(order_id: str, amount_usd: float) -> str:
        """Refund part or all of an order."""
        served.append((order_id, amount_usd))
        return f"refunded {amount_usd} on {order_id}"

    async with memory.create_connected_server_and_client_session(server) as session:
        mcp_tools = await adapters.load_mcp_tools(session)
        _, model, tools = await lg.start(st, "refund-agent", "refund", fake_model(
            calls(("issue_refund", {"order_id": "1", "amount_usd": 40.0}, "c1"),
                  ("issue_refund", {"order_id": "2", "amount_usd": 900.0}, "c2")),
            answer("Done."),
        ), mcp_tools, model_id=MODEL)  # fmt: skip
        done = await build(model, tools, InMemorySaver()).ainvoke(
            {"messages": [("user", "refund")]}, CONFIG
        )
    allowed, refused = tool_messages(done)
    assert served == [("1", 40.0)]
    assert "refunded 40.0 on 1" in str(allowed.content)
    assert refused.status == "error" and "decided by finance" in str(refused.content)


async def test_langchain_create_agent_through_the_middleware(st: steward.Steward) -> None:
    """LangChain 1.x create_agent (on LangGraph): one middleware governs tools and model."""
    agents = pytest.importorskip("langchain.agents")
    from steward.adapters.langchain import StewardMiddleware

    shop = Shop()
    toolset = shop.tools()
    run = await st.start_run("refund-agent", "refunds", tools=declare_tools(toolset))
    script = fake_model(
        calls(("issue_refund", {"order_id": "1", "amount_usd": 40.0}, "c1"),
              ("issue_refund", {"order_id": "2", "amount_usd": 250.0}, "c2"),
              ("delete_customer", {"email": "a@example.com"}, "c3")),
        answer("Done."),
    )  # fmt: skip
    agent = agents.create_agent(
        script, toolset, middleware=[StewardMiddleware(run, model_id=MODEL)],
        checkpointer=InMemorySaver(),
    )  # fmt: skip
    paused = await agent.ainvoke({"messages": [("user", "refunds")]}, CONFIG)
    (request,) = approvals(paused)
    assert request.call_id == "c2" and shop.refunds == [("1", 40.0)]
    await approve(st, request.approval_id)
    done = await agent.ainvoke(resume_command(paused), CONFIG)
    assert done["messages"][-1].content == "Done."
    assert shop.refunds == [("1", 40.0), ("2", 250.0)]
    denied = [m for m in tool_messages(done) if m.tool_call_id == "c3"]
    assert denied and denied[0].status == "error" and "steward denied" in str(denied[0].content)
    responded = [e for e in read_journal(st.db, run.id) if e.type == "model.responded"]
    assert len(responded) == 2


async def test_sync_invoke_fails_closed(st: steward.Steward) -> None:
    shop = Shop()
    run = await start(st, shop, "refund $40")
    _, tools = govern(run, fake_model(), shop.tools(), model_id=MODEL)
    message = calls(("issue_refund", {"order_id": "7", "amount_usd": 40.0}, "c1"))
    with pytest.raises(steward.StewardError, match="async path only"):
        tools_only(tools).invoke({"messages": [message]})
    assert shop.refunds == []


def test_example_runs() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_refund.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"^run run_\w+$", done.stdout, re.MULTILINE), done.stdout
    assert "waits for approval apr_" in done.stdout
    assert "decision: approved by reviewer:rita" in done.stdout
    assert "refunds executed: 2 [('10056', 40.0), ('10057', 250.0)]" in done.stdout
    assert done.stdout.rstrip().endswith("status: succeeded")
