"""A Pydantic AI refund agent governed by steward, end to end, offline.

The agent's model is a FunctionModel (no key, no network); steward runs on a temporary
SQLite file. The agent looks an order up (autonomous), asks to refund it (the spec says
a person reviews refunds): the run ends with Pydantic AI's DeferredToolRequests; a
reviewer approves in steward; the program resumes with the decision and the refund runs
exactly once. Prints the run id and its final status.

    pip install 'steward[pydantic-ai]'
    python examples/pydantic_ai_refund.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests
from pydantic_ai.usage import RequestUsage

import steward
from steward.adapters.pydantic_ai import Governed

SPEC = """\
name: refund-agent
model: external
tools: [lookup_order, issue_refund]
decision_authority:
  autonomous: [lookup_order]
  requires_human_review: [issue_refund]
cost_controls:
  max_cost_per_run_usd: 0.50
"""

REFUNDS: list[dict[str, Any]] = []


def fake_llm(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Stands in for gpt-4o-mini: look up, refund, then answer."""
    turn = sum(isinstance(m, ModelResponse) for m in messages)
    usage = RequestUsage(input_tokens=120, output_tokens=20)
    if turn == 0:
        return ModelResponse([ToolCallPart("lookup_order", {"order_id": "10056"})], usage=usage)
    if turn == 1:
        refund = {"order_id": "10056", "amount_usd": 40.0}
        return ModelResponse([ToolCallPart("issue_refund", refund)], usage=usage)
    return ModelResponse([TextPart("Order 10056 was refunded $40.")], usage=usage)


def build_agent(governed: Governed) -> Agent[None, str | DeferredToolRequests]:
    agent = Agent(
        FunctionModel(fake_llm, model_name="gpt-4o-mini"),
        output_type=[str, DeferredToolRequests],
        capabilities=[governed],  # <- the line that governs it
    )

    @agent.tool_plain
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look an order up."""
        return {"order_id": order_id, "total_usd": 40.0, "paid": True}

    @agent.tool_plain
    def issue_refund(order_id: str, amount_usd: float) -> dict[str, Any]:
        """Refund an order."""
        REFUNDS.append({"order_id": order_id, "amount_usd": amount_usd})
        return {"refund_id": f"rf_{len(REFUNDS)}", "amount_usd": amount_usd}

    return agent


async def a_reviewer_approves(st: steward.Steward, approval_id: str) -> None:
    """What a person does in the console, the API or `steward approvals approve`."""
    from steward.security.keys import Role
    from steward.store.keys import create_key

    row, _ = create_key(st.db, name="rita", role=Role.REVIEWER, by="admin:example")
    await st.approvals.decide(approval_id, who=row.principal, approve=True, comment="paid order")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "agents"
        specs.mkdir()
        (specs / "refund.yaml").write_text(SPEC, encoding="utf-8")
        async with steward.open(f"sqlite:///{tmp}/steward.db", specs=specs) as st:
            governed = Governed(st, "refund-agent", effects={"lookup_order": "read"})
            agent = build_agent(governed)
            result = await agent.run("Please refund order 10056")
            requests = result.output
            assert isinstance(requests, DeferredToolRequests)
            meta = requests.metadata[requests.approvals[0].tool_call_id]["steward"]
            run_id = meta["run_id"]
            print(f"{run_id} {await st.run_status(run_id)}: {meta['reason']}")

            await a_reviewer_approves(st, meta["approval_id"])
            answers = await governed.decisions(requests, timeout=30)
            result = await agent.run(
                message_history=result.all_messages(), deferred_tool_results=answers
            )
            print(f"answer: {result.output}")
            print(f"refunds executed: {len(REFUNDS)}")
            print(f"{run_id} {await st.run_status(run_id)}")


if __name__ == "__main__":
    asyncio.run(main())
