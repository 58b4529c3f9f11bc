"""Graceful degradation and tiered routing, as Model wrappers.

FallbackModel tries a chain of models in order, skipping any whose circuit is open, and
turns "everything failed" into one typed error with every reason. RoleRouter sends each
request to the model configured for its role (route, classify, reason, summarize).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from steward.core.breaker import CircuitBreakers
from steward.core.errors import ModelError, ProviderError
from steward.core.messages import ModelResponse
from steward.models.protocol import Model, ModelRequest, StreamEnd, StreamEvent, StreamingModel

# One wait for a provider's own Retry-After advice is worth it only when it is short.
MAX_RETRY_AFTER = 2.0


class FallbackModel:
    def __init__(self, chain: Sequence[Model], breakers: CircuitBreakers | None = None) -> None:
        if not chain:
            raise ValueError("a fallback chain needs at least one model")
        self.chain = list(chain)
        self.breakers = breakers or CircuitBreakers(threshold=3, cooldown=30.0)
        self.name = self.chain[0].name

    async def respond(self, request: ModelRequest) -> ModelResponse:
        failures: list[str] = []
        for model in self.chain:
            if not self.breakers.admit(model.name, time.monotonic()):
                failures.append(f"{model.name}: circuit open")
                continue
            try:
                response = await self._attempt(model, request)
            except ModelError as exc:
                self.breakers.record(model.name, False, time.monotonic())
                failures.append(f"{model.name}: [{exc.code}] {exc.message}")
                continue
            self.breakers.record(model.name, True, time.monotonic())
            return response
        raise ModelError(
            "every model is unavailable: " + "; ".join(failures), code="model.unavailable"
        )

    async def _attempt(self, model: Model, request: ModelRequest) -> ModelResponse:
        try:
            return await model.respond(request)
        except ProviderError as exc:
            wait = exc.retry_after
            if exc.code != "model.rate_limited" or wait is None or wait > MAX_RETRY_AFTER:
                raise
            await asyncio.sleep(wait)  # the provider said when; once, then fall back
            return await model.respond(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Falls back only before the first delta: text already shown cannot be unsaid."""
        failures: list[str] = []
        for model in self.chain:
            if not self.breakers.admit(model.name, time.monotonic()):
                failures.append(f"{model.name}: circuit open")
                continue
            started = False
            try:
                if isinstance(model, StreamingModel):
                    async for item in model.stream(request):
                        started = True
                        yield item
                else:
                    yield StreamEnd(await model.respond(request))
            except ModelError as exc:
                self.breakers.record(model.name, False, time.monotonic())
                if started:
                    raise
                failures.append(f"{model.name}: [{exc.code}] {exc.message}")
                continue
            self.breakers.record(model.name, True, time.monotonic())
            return
        raise ModelError(
            "every model is unavailable: " + "; ".join(failures), code="model.unavailable"
        )


class RoleRouter:
    def __init__(self, default: Model, by_role: dict[str, Model]) -> None:
        self.default = default
        self.by_role = dict(by_role)
        self.name = default.name

    def for_role(self, role: str) -> Model:
        return self.by_role.get(role, self.default)

    async def respond(self, request: ModelRequest) -> ModelResponse:
        return await self.for_role(request.role).respond(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        model = self.for_role(request.role)
        if isinstance(model, StreamingModel):
            async for item in model.stream(request):
                yield item
        else:
            yield StreamEnd(await model.respond(request))
