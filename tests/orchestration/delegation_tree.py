"""A three-level deployment for the delegation tests: `triage` (the root) delegates to
`orders`, which delegates to `billing`, which issues a keyed refund. Each agent has its
own scripted model, spec and policy; one Runner with a Delegator over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from steward.core.messages import ModelResponse
from steward.engines.embedded import EmbeddedEngine
from steward.models.pricing import PriceTable, Rate
from steward.orchestration import Delegator
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.testing import ScriptedModel, calls, final

__all__ = ["calls", "final"]
from steward.tools import tool
from steward.tools.base import ToolContext

ROOT_SAYS = "Order 10114 arrived broken, please refund it to Ava"


def spec(
    name: str,
    tools: Sequence[str],
    *,
    agents: Sequence[str] = (),
    autonomous: Sequence[str] = (),
    review: Sequence[str] = (),
    extra: str = "",
) -> str:
    lines = [
        f"name: {name}",
        "model: scripted",
        f"prompt: You are {name}.",
        f"tools: [{', '.join(tools)}]",
        "decision_authority:",
        f"  autonomous: [{', '.join(autonomous)}]",
        f"  requires_human_review: [{', '.join(review)}]",
    ]
    if agents:
        lines += ["orchestration:", f"  agents: [{', '.join(agents)}]"]
    return "\n".join(lines) + "\n" + extra


@dataclass
class Refunds:
    done: list[tuple[str, str]] = field(default_factory=list)  # (order, idempotency key)


def refund_tool(refunds: Refunds, cost: float = 0.0) -> Any:
    @tool(effect="write", keyed=True, cost_usd=cost)
    def refund(order: str, context: ToolContext) -> dict[str, str]:
        refunds.done.append((order, context.idempotency_key))
        return {"refunded": order}

    return refund


def agent(text: str, script: list[ModelResponse], tools: Sequence[Any] = ()) -> AgentRuntime:
    loaded = load_spec_text(text, "agents.yaml")
    return build_agent(loaded, list(tools), model=ScriptedModel(script))


def priced(cost_per_call: float) -> PriceTable:
    """A price table where each scripted call costs about `cost_per_call`."""
    per_token = cost_per_call / 1_000_000
    return PriceTable("test", "test", {"scripted": Rate(per_token, per_token, per_token)})


@dataclass
class Deployment:
    db: Database
    journal: Journal
    agents: dict[str, AgentRuntime]
    prices: PriceTable | None = None

    @property
    def runner(self) -> Runner:
        return Runner(
            EmbeddedEngine(self.db, self.journal),
            self.prices,
            delegation=Delegator(self.agents, self.db),
        )


def three_levels(
    db: Database,
    journal: Journal,
    refunds: Refunds,
    *,
    billing_review: bool = False,
    root_extra: str = "",
    tool_cost: float = 0.0,
) -> Deployment:
    triage = agent(
        spec("triage", ["delegate.orders"], agents=["orders"], autonomous=["delegate.orders"],
             extra=root_extra),
        [calls(("delegate.orders", {"message": "refund order 10114"})), final("done: {x}")],
    )  # fmt: skip
    orders = agent(
        spec("orders", ["delegate.billing"], agents=["billing"], autonomous=["delegate.billing"]),
        [calls(("delegate.billing", {"message": "refund 10114 now"})), final("orders done")],
    )
    billing = agent(
        spec("billing", ["refund"], **({"review": ["refund"]} if billing_review
                                       else {"autonomous": ["refund"]})),
        [calls(("refund", {"order": "10114"})), final("refunded 10114")],
        [refund_tool(refunds, tool_cost)],
    )  # fmt: skip
    return Deployment(db, journal, {"triage": triage, "orders": orders, "billing": billing})
