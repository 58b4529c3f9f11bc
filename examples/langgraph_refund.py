"""A LangGraph refund agent governed by steward, end to end, with no key and no network.

The agent is a plain LangGraph graph (a model node, a ToolNode, a SQLite checkpointer);
its model is LangChain's fake chat model playing a script. steward governs it through
`steward.adapters.langgraph`: the $40 refund is within the agent's authority and runs; the
$250 one needs a person, so the graph pauses (LangGraph's interrupt, kept by the
checkpointer) until a reviewer approves it in steward; then it runs, exactly once.

    python examples/langgraph_refund.py
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import steward
from steward.adapters.langgraph import approvals, resume_command, start

SPEC = """
name: refund-agent
model: external            # the reasoning lives in LangGraph
tools: [lookup_order, issue_refund]
decision_authority:
  autonomous: [lookup_order, issue_refund]
conditions:
  - id: refund-over-100
    tool: issue_refund
    when: args.amount_usd > 100.0
    then: requires_human_review
    reason: Refunds over $100 need a person.
cost_controls:
  max_cost_per_run_usd: 0.50
"""

REFUNDS: list[tuple[str, float]] = []


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up."""
    return {"order_id": order_id, "total_usd": 290.0, "status": "delivered"}


@tool
def issue_refund(order_id: str, amount_usd: float) -> str:
    """Refund part or all of an order."""
    REFUNDS.append((order_id, amount_usd))
    return f"refunded ${amount_usd:.2f} on order {order_id}"


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model; binding tools is a no-op (the script picks them)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def usage(n: int) -> dict[str, int]:
    return {"input_tokens": n, "output_tokens": n // 4, "total_tokens": n + n // 4}


SCRIPT = [
    AIMessage(
        "",
        tool_calls=[{"name": "lookup_order", "args": {"order_id": "10056"}, "id": "call-1"}],
        usage_metadata=usage(400),
    ),
    AIMessage(
        "",
        tool_calls=[
            {
                "name": "issue_refund",
                "args": {"order_id": "10056", "amount_usd": 40.0},
                "id": "call-2",
            },
            {
                "name": "issue_refund",
                "args": {"order_id": "10057", "amount_usd": 250.0},
                "id": "call-3",
            },
        ],
        usage_metadata=usage(600),
    ),
    AIMessage("Refunded $40 on #10056 and $250 on #10057.", usage_metadata=usage(800)),
]


def build_graph(model: Any, tools: ToolNode, checkpointer: Any) -> Any:
    async def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {
            "messages": [
                await model.bind_tools([lookup_order, issue_refund]).ainvoke(state["messages"])
            ]
        }

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


async def reviewer_approves(st: steward.Steward, approval_id: str) -> None:
    """Stands in for a person: in production a reviewer approves in the console, the API
    or `steward approvals approve <id>`, from anywhere; this program only waits."""
    from steward.security.keys import Principal, Role  # the stand-in's identity

    rita = Principal("key-rita", "prn-rita", "rita", Role.REVIEWER)
    await st.approvals.decide(approval_id, who=rita, approve=True, comment="order checked")


async def main() -> None:
    text = "Please refund $40 on order 10056 and $250 on order 10057."
    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "agents"
        specs.mkdir()
        (specs / "refund-agent.yaml").write_text(SPEC, encoding="utf-8")
        config = {"configurable": {"thread_id": "customer-42"}}
        async with (
            await steward.open(f"sqlite:///{tmp}/steward.db", specs=specs) as st,
            AsyncSqliteSaver.from_conn_string(f"{tmp}/checkpoints.sqlite") as saver,
        ):
            scripted = ScriptedChatModel(messages=iter(SCRIPT))
            # the governed agent: one line starts the run and wraps the model and the tools
            run, model, tools = await start(
                st, "refund-agent", text, scripted, [lookup_order, issue_refund],
                model_id="openai:gpt-4o-mini", effects={"lookup_order": "read"},
            )  # fmt: skip
            graph = build_graph(model, tools, saver)
            print(f"run {run.id}")

            result = await graph.ainvoke({"messages": [("user", text)]}, config)
            for request in approvals(result):
                print(f"paused: {request.tool} {request.arguments} waits for approval "
                      f"{request.approval_id} ({request.reason})")  # fmt: skip
                await reviewer_approves(st, request.approval_id)
                decision = await st.wait_for_decision(request.approval_id, timeout=10.0)
                print(f"decision: {decision.status} by {decision.by}")
            result = await graph.ainvoke(resume_command(result), config)

            answer = str(result["messages"][-1].content)
            await run.finish(answer, confidence=0.9)
            print(f"answer: {answer}")
            print(f"refunds executed: {len(REFUNDS)} {REFUNDS}")
            print(f"status: {await st.run_status(run.id)}")


if __name__ == "__main__":
    asyncio.run(main())
