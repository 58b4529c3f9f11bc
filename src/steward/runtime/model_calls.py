"""One model call of a run: the response caches, the budget reservation, streaming, and
the `model.responded` event (what the runner replays on resume)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from steward.core.errors import ModelError, ProviderError
from steward.core.events import Event, ModelFailed, ModelResponded
from steward.core.faults import crashpoint
from steward.core.messages import ModelResponse, Usage
from steward.gate.budget import BudgetLedger, Hold
from steward.models.cache import ResponseCache, cache_key
from steward.models.factory import model_names
from steward.models.pricing import PriceTable
from steward.models.protocol import ModelRequest, StreamEnd, StreamingModel, TextDelta
from steward.models.retry import reporting
from steward.runtime.agent import AgentRuntime
from steward.runtime.context import fit_context
from steward.runtime.executor import Executor
from steward.runtime.spend import SpendGuard

if TYPE_CHECKING:  # NumPy and the embedders load only when a spec enables the semantic cache
    from steward.models.semantic_cache import SemanticCache

TextSink = Callable[[str], None]
EXTERNAL_ROLE = "external"  # a ModelResponded of a call the agent's own program made
log = logging.getLogger(__name__)


class ModelCaller:
    def __init__(self, prices: PriceTable, ledger: BudgetLedger) -> None:
        self.spend = SpendGuard(prices, ledger)
        self._caches: dict[tuple[str, str], ResponseCache] = {}
        self._semantic: dict[tuple[str, str], SemanticCache] = {}

    def cache_for(self, agent: AgentRuntime) -> ResponseCache | None:
        config = agent.loaded.spec.cache
        if not config.enabled:
            return None
        marker = (agent.name, agent.version)
        cache = self._caches.get(marker)
        if cache is None:
            cache = self._caches[marker] = ResponseCache(config.ttl_seconds, config.max_entries)
        return cache

    def semantic_for(self, agent: AgentRuntime) -> SemanticCache | None:
        config = agent.loaded.spec.cache
        if not config.semantic.enabled:
            return None
        marker = (agent.name, agent.version)
        cache = self._semantic.get(marker)
        if cache is None:
            from steward.models.embeddings import embedder_for
            from steward.models.semantic_cache import SemanticCache

            semantic = config.semantic
            embedder = embedder_for(
                semantic.embedder, base_url=semantic.base_url, api_key_env=semantic.api_key_env
            )
            cache = self._semantic[marker] = SemanticCache(embedder, semantic.threshold, config.ttl_seconds,
                                                           config.max_entries)  # fmt: skip
        return cache

    async def call(self, agent: AgentRuntime, executor: Executor, step: int, request: ModelRequest, *,
                   after_side_effect: bool, on_text: TextSink | None) -> ModelResponse:  # fmt: skip
        request = self._fit(agent, request)
        cache = self.cache_for(agent)
        key = None
        if cache is not None and not after_side_effect:
            key = cache_key(f"{agent.name}@{agent.version}", agent.model.name, request)
            hit = cache.get(key)
            if hit is not None:
                return self._serve(executor, step, request, hit, on_text)
        # The semantic cache answers the user's request only: step 0, before any side effect.
        # Later turns carry tool results, which a similar-sounding request does not share.
        semantic = self.semantic_for(agent) if step == 0 and not after_side_effect else None
        text, scope = None, ""
        if semantic is not None:
            from steward.models.semantic_cache import request_text, semantic_scope

            text = request_text(request)
            scope = semantic_scope(f"{agent.name}@{agent.version}", agent.model.name, request)
        if semantic is not None and text is not None:
            try:
                found = await asyncio.to_thread(semantic.get, scope, text)
            except ProviderError as exc:  # a provider's embeddings are down: ask the model
                log.warning("semantic cache lookup failed: %s", exc)
                found = None
            if found is not None:
                return self._serve(executor, step, request, found[0], on_text)
        hold = await self.spend.reserve(agent, executor.run_id, request, executor.tags)
        began = time.perf_counter()
        try:
            with reporting(lambda event: executor.emit(_at_step(event, step))):
                raw = await self._ask(agent, request, on_text)
        except BaseException:
            await asyncio.shield(self.spend.settle(hold, None))
            raise
        response = await self.spend.settle(hold, raw)
        assert response is not None
        executor.emit(
            ModelResponded(step, response, (time.perf_counter() - began) * 1000, request.role)
        )
        crashpoint("model.responded")
        if cache is not None and key is not None and not response.cut_off:
            cache.put(key, response)
        if semantic is not None and text is not None and response.is_final:
            # final answers only: a cached tool call carries arguments read from another text
            try:
                await asyncio.to_thread(semantic.put, scope, text, response)
            except ProviderError as exc:
                log.warning("semantic cache store failed: %s", exc)
        alert = await self.spend.alert(agent)
        if alert is not None:
            executor.emit(alert)
        return response

    async def record_external(
        self,
        agent: AgentRuntime,
        executor: Executor,
        step: int,
        hold: Hold | None,
        response: ModelResponse | None,
        latency_ms: float,
    ) -> ModelResponse | None:
        """A model call the agent's own program made (steward/embed/): settle its
        reservation at the priced actual, record it as the run's `model.responded` (cost
        ledger, traces, metrics), and alert on the daily budget, as for a call of ours.
        `response` None: the call failed; the reservation is released, nothing spent."""
        priced = await self.spend.settle(hold, response)
        if priced is not None:
            executor.emit(ModelResponded(step, priced, latency_ms, EXTERNAL_ROLE))
        alert = await self.spend.alert(agent)
        if alert is not None:
            executor.emit(alert)
        return priced

    @staticmethod
    def _serve(executor: Executor, step: int, request: ModelRequest, hit: ModelResponse,
               on_text: TextSink | None) -> ModelResponse:  # fmt: skip
        served = msgspec.structs.replace(hit, usage=Usage())  # no provider call, no cost
        executor.emit(ModelResponded(step, served, 0.0, request.role, cached=True))
        if on_text is not None and served.text:
            on_text(served.text)
        return served

    def _fit(self, agent: AgentRuntime, request: ModelRequest) -> ModelRequest:
        """Within the smallest window of the models that may serve this request."""
        names = model_names(agent.model)
        windows = [
            (r.context, n)
            for n in names
            if (r := self.spend.prices.rate(n)) is not None and r.context
        ]
        if not windows:
            return request
        window, name = min(windows)
        return fit_context(request, name, window, agent.loaded.spec.limits.context_strategy)

    @staticmethod
    async def _ask(
        agent: AgentRuntime, request: ModelRequest, on_text: TextSink | None
    ) -> ModelResponse:
        model = agent.model
        if on_text is None or not isinstance(model, StreamingModel):
            response = await model.respond(request)
            if on_text is not None and response.text:
                on_text(response.text)
            return response
        final: ModelResponse | None = None
        async for item in model.stream(request):
            if isinstance(item, TextDelta):
                on_text(item.text)
            elif isinstance(item, StreamEnd):
                final = item.response
        if final is None:
            raise ModelError(
                f"{model.name} ended its stream without a response", code="model.truncated"
            )
        return final


def _at_step(event: Event, step: int) -> Event:
    """A failed attempt, placed at the run's step it belongs to."""
    return msgspec.structs.replace(event, step=step) if isinstance(event, ModelFailed) else event
