"""Graceful degradation, tiered routing, the response cache and streaming, with scripted
models standing in for providers (the providers' own wire tests are in tests/providers)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from steward.core.breaker import CircuitBreakers
from steward.core.errors import ModelError, ProviderError
from steward.core.events import ModelResponded, RunStatus
from steward.core.messages import ModelResponse
from steward.engines.embedded import EmbeddedEngine
from steward.models.protocol import ModelRequest
from steward.models.retry import NO_RETRY, RetryPolicy
from steward.models.routing import FallbackModel, RoleRouter
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: router
model: scripted
tools: [lookup, save]
decision_authority: {autonomous: [lookup, save]}
limits: {max_run_seconds: 5}
%s
"""


class Down:
    def __init__(
        self, name: str, code: str = "model.unavailable", retry_after: float | None = None
    ) -> None:
        self.name = name
        self.code = code
        self.retry_after = retry_after
        self.calls = 0

    async def respond(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        raise ProviderError(f"{self.name} is down", code=self.code, provider=self.name, retryable=True,
                            retry_after=self.retry_after)  # fmt: skip


class Flaky(Down):
    """Rate limited once, then answers."""

    async def respond(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls == 1:
            raise ProviderError("slow down", code="model.rate_limited", provider=self.name, retryable=True,
                                retry_after=0.05)  # fmt: skip
        return final("after the wait")


@tool(effect="read")
async def lookup(q: str) -> str:
    return f"found {q}"


saved: list[str] = []


@tool(effect="write", keyed=True)
async def save(note: str) -> str:
    saved.append(note)
    return "saved"


def agent(model: Any, extra: str = "") -> Any:
    return build_agent(load_spec_text(SPEC % extra, "router.yaml"), [lookup, save], model=model)


@pytest.fixture
async def runner(sqlite_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(sqlite_db)
    yield Runner(EmbeddedEngine(sqlite_db, journal))
    journal.close()


REQUEST = ModelRequest(())


async def test_fallback_serves_from_the_next_model() -> None:
    first, second = Down("a:one"), ScriptedModel([final("from b")], name="b:two")
    response = await FallbackModel([first, second], retries=NO_RETRY).respond(REQUEST)
    assert (response.text, response.model, first.calls) == ("from b", "b:two", 1)


async def test_a_transient_failure_is_retried_before_falling_back() -> None:
    first, second = Down("a:one"), ScriptedModel([final("from b")], name="b:two")
    quick = RetryPolicy(attempts=3, backoff_seconds=0.01)
    response = await FallbackModel([first, second], retries=quick).respond(REQUEST)
    assert (response.text, response.model, first.calls) == ("from b", "b:two", 3)


async def test_a_short_retry_after_is_honoured_once() -> None:
    flaky = Flaky("a:one")
    started = time.perf_counter()
    response = await FallbackModel([flaky, Down("b:two")]).respond(REQUEST)
    assert response.text == "after the wait" and flaky.calls == 2
    assert time.perf_counter() - started >= 0.05


async def test_everything_down_is_one_typed_error_with_every_reason() -> None:
    chain = FallbackModel([Down("a:one"), Down("b:two", code="model.timeout")], retries=NO_RETRY)
    with pytest.raises(ModelError) as caught:
        await chain.respond(REQUEST)
    assert caught.value.code == "model.timeout", "the cause of the last failure, not a generic code"
    assert (
        "a:one: [model.unavailable]" in caught.value.message
        and "b:two: [model.timeout]" in caught.value.message
    )


async def test_an_open_circuit_skips_a_failing_provider() -> None:
    failing, backup = Down("a:one"), ScriptedModel([final("ok")] * 10, name="b:two")
    chain = FallbackModel([failing, backup], CircuitBreakers(threshold=2, cooldown=60), NO_RETRY)
    for _ in range(5):
        await chain.respond(REQUEST)
    assert failing.calls == 2, "after two failures the circuit opens and the provider is skipped"


async def test_a_run_whose_providers_are_all_down_escalates_within_its_bound(
    runner: Runner,
) -> None:
    started = time.perf_counter()
    result = await runner.run(agent(FallbackModel([Down("a:one"), Down("b:two")])), "hello")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.unavailable")
    assert "every model is unavailable" in result.reason
    assert time.perf_counter() - started < 5


async def test_roles_route_steps_to_their_models(runner: Runner, sqlite_db: Database) -> None:
    router = ScriptedModel([calls(("lookup", {"q": "x"}))], name="openai:gpt-4o-mini")
    reasoner = ScriptedModel(
        [final("never used"), final("answer", 0.9)], name="anthropic:claude-sonnet-4-5"
    )
    model = RoleRouter(router, {"route": router, "reason": reasoner})
    result = await runner.run(agent(model), "find x")
    assert result.status is RunStatus.SUCCEEDED
    served = [
        e.event
        for e in read_journal(sqlite_db, result.run_id)
        if isinstance(e.event, ModelResponded)
    ]
    assert [(e.role, e.response.model) for e in served] == [
        ("route", "openai:gpt-4o-mini"), ("reason", "anthropic:claude-sonnet-4-5"),
    ]  # fmt: skip


async def test_identical_turns_are_served_from_the_cache(
    runner: Runner, sqlite_db: Database
) -> None:
    model = ScriptedModel([final("cached answer")] * 5)
    cached_agent = agent(model, "cache: {enabled: true, ttl_seconds: 60}")
    first = await runner.run(cached_agent, "same question")
    second = await runner.run(cached_agent, "same question")
    assert first.output == second.output == "cached answer"
    assert len(model.requests) == 1, "the second run's turn came from the cache"
    [event] = [
        e.event
        for e in read_journal(sqlite_db, second.run_id)
        if isinstance(e.event, ModelResponded)
    ]
    assert event.cached and event.response.usage.cost_usd == 0


async def test_the_cache_is_not_used_after_a_side_effect(runner: Runner) -> None:
    saved.clear()
    script = [calls(("save", {"note": "n"})), final("done")]
    model = ScriptedModel(script * 2)
    cached_agent = agent(model, "cache: {enabled: true}")
    await runner.run(cached_agent, "save it")
    await runner.run(cached_agent, "save it")
    # turn 0 of the second run hits the cache (same request); after its write, turn 1 asks the model
    assert len(model.requests) == 3
    assert saved == ["n", "n"]


async def test_streaming_delivers_text_as_it_comes(runner: Runner) -> None:
    pieces: list[str] = []
    result = await runner.run(
        agent(ScriptedModel([final("one two three")])), "count", on_text=pieces.append
    )
    assert pieces == ["one ", "two ", "three"] and result.output == "one two three"
