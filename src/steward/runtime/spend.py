"""Budgets for model calls: reserve an upper-bound estimate before the call, settle the
priced actual after, and say when today's spend crosses the alert threshold.

The estimate is an upper bound (input tokens ≤ UTF-8 bytes of the request; output
tokens ≤ limits.max_output_tokens, which providers are asked to enforce), so concurrent
runs can never together overshoot a budget: the reservation and the check are one
atomic step in the deployment's limit store (gate/budget.py), shared by every process.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from steward.core.decision import Decision, deny
from steward.core.errors import StewardError
from steward.core.events import BudgetThresholdCrossed
from steward.core.messages import ModelResponse, Usage
from steward.gate.budget import BudgetLedger, Caps, Hold, caps_of
from steward.models.factory import model_names
from steward.models.pricing import PriceTable, Rate
from steward.models.protocol import ModelRequest
from steward.runtime.agent import AgentRuntime


class BudgetExhausted(StewardError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reasons[0].message, code=decision.primary_code)
        self.decision = decision


def _upper_bound(request: ModelRequest, max_output: int) -> Usage:
    size = sum(len(m.content.encode()) + 16 for m in request.messages)
    size += sum(len(msgspec.json.encode(t)) for t in request.tools)
    return Usage(input_tokens=size, output_tokens=max_output)


class SpendGuard:
    def __init__(self, prices: PriceTable, ledger: BudgetLedger) -> None:
        self.prices = prices
        self.ledger = ledger

    def rate(self, agent: AgentRuntime) -> Rate | None:
        """The dearest rate among the models this agent may call (fallbacks and roles
        included), so the reservation bounds whichever one serves; None if any is unpriced."""
        rates = [self.prices.rate(name) for name in model_names(agent.model)]
        if any(r is None for r in rates):
            return None
        known = [r for r in rates if r is not None]
        return Rate(  # input at the dearer of the plain and the cache-write rate
            max(max(r.input, r.cache_write or 0.0) for r in known),
            max(r.output for r in known),
            max(r.cached_input for r in known),
        )

    async def reserve(
        self,
        agent: AgentRuntime,
        run_id: str,
        request: ModelRequest,
        tags: Mapping[str, str] | None = None,
    ) -> Hold | None:
        """The reservation (None: the agent has no budget); raises BudgetExhausted when
        the call may not be made."""
        caps = caps_of(agent.loaded.spec.cost_controls)
        if not caps.any:
            return None
        rate = self.rate(agent)
        if rate is None:
            raise BudgetExhausted(
                deny(
                    "budget.unpriced",
                    f"model {agent.model.name!r} has no price, so its cost cannot be bounded",
                )
            )
        bound = _upper_bound(request, agent.loaded.spec.limits.max_output_tokens)
        return await self._hold(agent, run_id, rate.cost(bound), caps, tags)

    async def reserve_model(
        self,
        agent: AgentRuntime,
        run_id: str,
        model: str,
        max_output_tokens: int,
        max_input_tokens: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Hold | None:
        """The reservation for one call of `model` made by the agent's own program (an
        external agent, steward/embed/), or None when the agent has no budget. The
        input bound is `max_input_tokens`, else the model's context window; a model with
        neither, or with no price, cannot be bounded: BudgetExhausted, fail closed."""
        caps = caps_of(agent.loaded.spec.cost_controls)
        if not caps.any:
            return None
        rate = self.prices.rate(model)
        if rate is None:
            raise BudgetExhausted(
                deny(
                    "budget.unpriced",
                    f"model {model!r} has no price, so its cost cannot be bounded "
                    "(add it to the price table: STEWARD_PRICES)",
                )
            )
        inputs = max_input_tokens if max_input_tokens is not None else rate.context
        if inputs is None:
            raise BudgetExhausted(
                deny(
                    "budget.unbounded",
                    f"the input of this call of {model!r} has no bound (no max_input_tokens "
                    "given, no context window in the price table), so its cost cannot be bounded",
                )
            )
        bound = Usage(input_tokens=inputs, output_tokens=max_output_tokens)
        return await self._hold(agent, run_id, rate.cost(bound), caps, tags)

    async def _hold(
        self,
        agent: AgentRuntime,
        run_id: str,
        estimate: float,
        caps: Caps,
        tags: Mapping[str, str] | None,
    ) -> Hold:
        held = await self.ledger.reserve(
            agent.name, run_id, estimate, caps, agent.policy.decide_budget, tags
        )
        if not isinstance(held, Hold):
            raise BudgetExhausted(held)
        return held

    async def settle(
        self, hold: Hold | None, response: ModelResponse | None
    ) -> ModelResponse | None:
        """Price the response from its reported usage and release the unused reservation."""
        actual = 0.0
        if response is not None:
            rate = self.prices.rate(response.model)  # priced as the model that served it
            actual = rate.cost(response.usage) if rate is not None else response.usage.cost_usd
            response = msgspec.structs.replace(
                response, usage=msgspec.structs.replace(response.usage, cost_usd=actual)
            )
        if hold is not None:
            await self.ledger.settle(hold, actual)
        return response

    async def alert(self, agent: AgentRuntime) -> BudgetThresholdCrossed | None:
        costs = agent.loaded.spec.cost_controls
        spent = await self.ledger.crossed(
            agent.name, costs.max_daily_spend_usd, costs.alert_on_threshold
        )
        if spent is None or costs.max_daily_spend_usd is None:
            return None
        return BudgetThresholdCrossed(
            agent.name,
            spent,
            costs.max_daily_spend_usd,
            costs.alert_on_threshold,
            costs.alert_webhook,
        )
