"""Validate arguments, decide by policy, apply rate limits, reserve budget."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from steward.core.decision import Decision, Verdict, deny
from steward.core.events import RateSlotTaken
from steward.gate.budget import BudgetLedger, caps_of
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome
from steward.gate.ratelimit import RateCounter
from steward.policy import PolicyContext
from steward.security.egress import outside
from steward.spec.models import Tier


class ValidateStage:
    """Arguments must fit the tool's JSON Schema. An unknown tool is decided by policy
    (unlisted → forbidden), so it passes through here untouched."""

    name = "validate"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        if cx.tool is not None:
            problem = cx.tool.validate_arguments(cx.call.arguments)
            if problem is not None:
                return cx.stop(
                    self.name, deny("args.invalid", f"arguments do not fit the schema: {problem}")
                )
        return await proceed(cx)


class EgressStage:
    """A destination argument outside the spec's `egress` allowlist is denied before any
    tier applies (security/egress.py). No `egress:` section: nothing is checked."""

    name = "egress"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        egress = cx.policy.spec.egress
        if egress is not None and cx.tool is not None and cx.tool.destinations:
            refused = outside(cx.call.arguments, sorted(cx.tool.destinations), egress.allow)
            if refused:
                listed = ", ".join(f"{name}={value!r}" for name, value in refused)
                return cx.stop(
                    self.name,
                    deny("egress.not_allowed", f"destination not in egress.allow: {listed}"),
                )
        return await proceed(cx)


class PolicyStage:
    name = "policy"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        unbound = deny("tool.unbound", f"no implementation is bound for '{cx.call.name}'")
        tier = cx.policy.tier_of(cx.call.name)
        if cx.tool is None and tier is not None and tier is not Tier.FORBIDDEN:
            # listed in the spec but no implementation bound: fail closed, saying so (the
            # policy would report the data classes it cannot know instead)
            return cx.stop(self.name, unbound)
        decision = cx.policy.evaluate(cx.call, PolicyContext(sources=cx.sources))
        if decision.verdict is Verdict.DENY:
            return cx.stop(self.name, decision)
        if cx.tool is None:  # fail closed, whatever the policy said
            return cx.stop(self.name, unbound)
        held = cx.tool.held()  # e.g. an MCP tool whose definition changed (steward/mcp/)
        if held is not None:
            return cx.stop(self.name, deny(*held))
        cx.decided(self.name, decision)
        return await proceed(cx)


@dataclass(slots=True)
class RateLimitStage:
    counter: RateCounter
    name: str = "rate_limit"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        limit = cx.policy.rate_limit(cx.call.name)
        record = cx.scope.recorded_call(cx.key)
        if record is not None and record.rate_slot:
            # the same call re-entering the gate (a resumed run: an approved call, a
            # delegation whose child waited): the slot it took still counts it
            return await proceed(cx)
        if limit is not None:  # a tool with no limit pays no store round trip
            used = await self.counter.try_acquire(
                cx.policy.agent, cx.call.name, limit.count, limit.period_seconds, time.time()
            )
            verdict = cx.policy.decide_rate(cx.call.name, used)
            if verdict is not None:
                return cx.stop(self.name, verdict)
            # The slot goes on the run's record too, for the audit trail.
            cx.scope.emit(RateSlotTaken(cx.key, cx.call.name, used + 1, limit.count))
        return await proceed(cx)


@dataclass(slots=True)
class BudgetStage:
    """Reserve the tool's cost before it runs; settle after (release on failure)."""

    ledger: BudgetLedger
    name: str = "budget"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        tool = cx.tool
        estimate = tool.cost_usd if tool is not None else 0.0
        if estimate == 0.0:  # a free call cannot overshoot a budget: no store round trip
            return await proceed(cx)
        caps = caps_of(cx.policy.spec.cost_controls)
        held = await self.ledger.reserve(
            cx.policy.agent,
            cx.scope.run_id,
            estimate,
            caps,
            cx.policy.decide_budget,
            cx.scope.tags,
        )
        if isinstance(held, Decision):
            return cx.stop(self.name, held)
        try:
            outcome = await proceed(cx)
        except BaseException:  # cancelled mid-call: the reservation is released, not kept
            await asyncio.shield(self.ledger.settle(held, 0.0))
            raise
        # a call released to its caller (decide-only) is about to run: it is spent too
        actual = estimate if outcome.status.value in {"executed", "released"} else 0.0
        await self.ledger.settle(held, actual)
        return outcome
