"""A small refund agent built with the OpenAI Agents SDK, governed by steward end to end.

No API key, no network: the agent's model is a scripted `Model` subclass, steward's
database a temporary SQLite file. The agent looks the order up (steward allows it),
then proposes a $120 refund: steward's spec sends refunds over $50 to a person, so the
SDK pauses natively (an interruption with a RunState). The program saves the RunState,
a person approves in steward (here: the store, as the console or CLI would), and the
program resumes it; the refund runs exactly once. Prints the run id and its final status.

    python examples/openai_agents_refund.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # no trace export without a key

from agents import Agent, RunState, function_tool

import steward
from steward.adapters.openai_agents import start
from steward.store.approvals import decide_approval
from steward.store.database import Database
from steward.testing.openai_agents import FakeModel, call

SPEC = """\
name: refund-agent
description: Refunds damaged orders; its reasoning is an OpenAI Agents SDK agent.
model: external
tools: [lookup_order, issue_refund]
decision_authority:
  autonomous: [lookup_order]
  requires_human_review: [issue_refund]
conditions:
  - id: small-refund
    tool: issue_refund
    when: args.amount_usd <= 50.0
    then: autonomous
    reason: Refunds up to $50 are within the agent's authority.
cost_controls:
  max_cost_per_run_usd: 0.50
"""

refunds: list[tuple[str, float]] = []


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: paid $120.00, arrived damaged"


@function_tool
def issue_refund(order_id: str, amount_usd: float) -> str:
    """Refund an order."""
    refunds.append((order_id, amount_usd))
    return f"refunded ${amount_usd:.2f} on order {order_id}"


# The agent as its team wrote it; only the model is a stand-in for this example.
agent = Agent(
    name="refunds",
    instructions="Refund damaged orders after looking them up.",
    tools=[lookup_order, issue_refund],
    model=FakeModel(
        [
            [call("lookup_order", {"order_id": "10056"}, "call_lookup")],
            [call("issue_refund", {"order_id": "10056", "amount_usd": 120.0}, "call_refund")],
        ]
    ),
)


async def main(workdir: Path) -> None:
    (workdir / "refund-agent.yaml").write_text(SPEC, encoding="utf-8")
    url = f"sqlite:///{workdir / 'steward.db'}"
    text = "Order 10056 arrived broken, please refund it."
    async with await steward.open(url, specs=workdir) as st:
        governed = await start(st, "refund-agent", agent, text, model_name="openai:gpt-4o-mini")

        async def on_pause(state: RunState[Any, Any]) -> None:
            # Save the paused run: a restart resumes from this string with
            # `attach(st, run_id, agent)` and `run_until_done(RunState.from_string(...))`.
            (workdir / f"{governed.run.id}.state.json").write_text(state.to_string(), "utf-8")
            for waiting in await governed.pending(state):
                print(f"waiting for a person: approval {waiting.approval_id}: {waiting.reason}")
                a_person_approves(url, waiting.approval_id)

        result = await governed.run_until_done(text, timeout=30, on_pause=on_pause)
        print(f"answer: {result.final_output}")
        print(f"refunds executed: {len(refunds)}")
        print(f"run {governed.run.id} status: {await st.run_status(governed.run.id)}")


def a_person_approves(url: str, approval_id: str) -> None:
    """Stands in for the console, `steward approvals approve`, or the API."""
    db = Database.open(url)
    try:
        decide_approval(db, approval_id, approve=True, by="human:alice",
                        comment="damaged on arrival: refund approved")  # fmt: skip
    finally:
        db.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
