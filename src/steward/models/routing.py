"""Graceful degradation and tiered routing, as Model wrappers.

FallbackModel tries a chain of models in order, skipping any whose circuit is open, and
turns "everything failed" into one typed error with every reason. RoleRouter sends each
request to the model configured for its role (route, classify, reason, summarize).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing

from steward.core.breaker import CircuitBreakers
from steward.core.errors import ModelError
from steward.core.events import ModelBreakerClosed, ModelBreakerOpened, ModelFailed
from steward.core.messages import ModelResponse
from steward.models.protocol import Model, ModelRequest, StreamEnd, StreamEvent, StreamingModel
from steward.models.retry import RetryPolicy, report


def endpoint(model: Model) -> str:
    """What a breaker guards: provider, model and base_url (`name@url`) when the model
    says where it is, else its name."""
    return str(getattr(model, "endpoint", model.name))


class FallbackModel:
    """Tries each model in order: each up to `retries.attempts` times on transient errors
    (same wait rule on both paths), skipping a model whose breaker is open. A stream that
    already delivered text is never restarted: its failure is the step's failure."""

    def __init__(
        self,
        chain: Sequence[Model],
        breakers: CircuitBreakers | None = None,
        retries: RetryPolicy | None = None,
    ) -> None:
        if not chain:
            raise ValueError("a fallback chain needs at least one model")
        self.chain = list(chain)
        self.breakers = breakers or CircuitBreakers(threshold=3, cooldown=30.0)
        self.retries = retries or RetryPolicy()
        self.name = self.chain[0].name

    async def respond(self, request: ModelRequest) -> ModelResponse:
        final: ModelResponse | None = None
        async for item in self._serve(request, streaming=False):  # to the end: it records
            if isinstance(item, StreamEnd):
                final = item.response
        assert final is not None, "_serve ends with a response or raises"
        return final

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        async with aclosing(self._serve(request, streaming=True)) as items:
            async for item in items:
                yield item

    async def _serve(
        self, request: ModelRequest, *, streaming: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        failures: list[str] = []
        last: ModelError | None = None
        for model in self.chain:
            key = endpoint(model)
            attempt = 0
            while True:
                attempt += 1
                if not self.breakers.admit(key, time.monotonic()):
                    failures.append(f"{model.name}: circuit open")
                    break
                began = time.monotonic()
                verdict: bool | None = None  # None: cancelled mid-call, no verdict on the provider
                delivered = False
                error: ModelError | None = None
                try:
                    if streaming and isinstance(model, StreamingModel):
                        async for item in model.stream(request):
                            if isinstance(item, StreamEnd):
                                verdict = True
                            else:
                                delivered = True
                            yield item
                    else:
                        response = await model.respond(request)
                        verdict = True
                        yield StreamEnd(response)
                except ModelError as exc:
                    verdict, error = False, exc
                finally:
                    self._record(key, verdict)
                if error is None:
                    return
                elapsed = (time.monotonic() - began) * 1000
                report(ModelFailed(model.name, key, error.code, error.message, attempt, elapsed,
                                   streamed=delivered))  # fmt: skip
                if delivered:
                    raise error  # text already shown cannot be unsaid, nor said twice
                failures.append(f"{model.name}: [{error.code}] {error.message}")
                last = error
                wait = self.retries.wait(error, attempt)
                if wait is None:
                    break
                await asyncio.sleep(wait)
        raise ModelError(
            "every model is unavailable: " + "; ".join(failures),
            code=last.code if last is not None else "model.unavailable",
        )

    def _record(self, key: str, verdict: bool | None) -> None:
        change = self.breakers.record(key, verdict, time.monotonic())
        if change == "opened":
            report(ModelBreakerOpened(key, self.breakers.threshold, self.breakers.cooldown))
        elif change == "closed":
            report(ModelBreakerClosed(key))


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
