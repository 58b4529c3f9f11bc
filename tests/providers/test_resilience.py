"""FallbackModel on the real wire protocols: transient errors retried (Retry-After
honoured on the streamed path too), breakers keyed by endpoint that recover after a
cancelled trial, and every failed attempt reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from steward.core.breaker import CircuitBreakers
from steward.core.errors import ModelError
from steward.core.events import Event, ModelBreakerClosed, ModelBreakerOpened, ModelFailed
from steward.core.messages import Message
from steward.models.protocol import Model, ModelRequest, StreamEnd, TextDelta
from steward.models.providers.anthropic_messages import AnthropicModel
from steward.models.providers.openai_compat import OpenAICompatModel
from steward.models.retry import NO_RETRY, RetryPolicy, deadline, reporting
from steward.models.routing import FallbackModel

from .anthropic_server import AnthropicServer
from .openai_server import OpenAIServer, Status, Stream

ASK = ModelRequest((Message("user", "hello"),))
FAST = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.02)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def oai() -> Iterator[OpenAIServer]:
    with OpenAIServer() as s:
        yield s


@pytest.fixture
def ant() -> Iterator[AnthropicServer]:
    with AnthropicServer() as s:
        yield s


@pytest.fixture
async def models(oai: OpenAIServer, ant: AnthropicServer) -> AsyncIterator[dict[str, Any]]:
    """One model per protocol, each with a way to script a failure and an answer."""
    o = OpenAICompatModel("gpt-test", base_url=oai.base_url, api_key="sk", timeout=5)
    a = AnthropicModel("claude-test", base_url=ant.url, api_key="sk", timeout=5)
    yield {"openai": (o, oai), "anthropic": (a, ant)}
    await o.aclose()
    await a.aclose()


def fail(server: OpenAIServer | AnthropicServer, code: int, retry_after: str | None = None) -> None:
    if isinstance(server, OpenAIServer):
        server.status(code, headers={"Retry-After": retry_after} if retry_after else {})
    else:
        server.status(code, retry_after=retry_after)


def hang(server: OpenAIServer | AnthropicServer, seconds: float) -> None:
    server.hang(seconds)


async def ask(chain: Model, streaming: bool) -> str:
    if not streaming:
        return (await chain.respond(ASK)).text
    assert isinstance(chain, FallbackModel)
    text = ""
    async for item in chain.stream(ASK):
        if isinstance(item, StreamEnd):
            assert item.response.text == text
        else:
            text += item.text
    return text


PROTOCOLS = ["openai", "anthropic"]
PATHS = pytest.mark.parametrize("streaming", [False, True], ids=["respond", "stream"])


# -- breakers -------------------------------------------------------------------------------


def test_a_call_that_ends_without_a_verdict_frees_the_half_open_trial() -> None:
    breakers = CircuitBreakers(threshold=1, cooldown=10)
    assert breakers.record("e", False, 0.0) == "opened"
    assert not breakers.admit("e", 5.0), "cooling down"
    assert breakers.admit("e", 11.0), "half-open: one trial"
    assert not breakers.admit("e", 11.0), "one trial at a time"
    assert breakers.record("e", None, 12.0) is None  # the trial was cancelled
    assert breakers.admit("e", 12.0), "the next call is the next trial"
    assert breakers.record("e", True, 12.5) == "closed"
    assert breakers.admit("e", 12.6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PATHS
async def test_a_cancelled_trial_does_not_keep_the_breaker_open(
    models: dict[str, Any], protocol: str, streaming: bool
) -> None:
    model, server = models[protocol]
    chain = FallbackModel([model], CircuitBreakers(threshold=1, cooldown=0.1), NO_RETRY)
    fail(server, 500)
    with pytest.raises(ModelError):
        await ask(chain, streaming)
    await asyncio.sleep(0.15)  # cooldown over: the next call is the half-open trial
    hang(server, 5)
    with pytest.raises(TimeoutError):  # the run's time bound (or a user) cancels the trial
        await asyncio.wait_for(ask(chain, streaming), 0.3)
    server.reply("back again")
    assert await ask(chain, streaming) == "back again"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_breakers_are_keyed_by_endpoint_not_model_name(protocol: str) -> None:
    """A fallback with the same model name at another base_url is another circuit: its
    successes must not clear the dead primary's failures."""
    if protocol == "openai":
        with OpenAIServer(fallback=Status(500)) as dead, OpenAIServer() as alive:
            for _ in range(5):
                alive.reply("from the replica")
            primary = OpenAICompatModel("gpt-test", base_url=dead.base_url, api_key="sk")
            replica = OpenAICompatModel("gpt-test", base_url=alive.base_url, api_key="sk")
            chain = FallbackModel(
                [primary, replica], CircuitBreakers(threshold=2, cooldown=60), NO_RETRY
            )
            assert primary.name == replica.name
            for _ in range(5):
                assert (await chain.respond(ASK)).text == "from the replica"
            assert len(dead.requests) == 2, "after two failures the primary's circuit is open"
    else:
        with AnthropicServer() as dead, AnthropicServer() as alive:
            for _ in range(5):
                dead.status(500)
                alive.reply("from the replica")
            primary = AnthropicModel("claude-test", base_url=dead.url, api_key="sk")
            replica = AnthropicModel("claude-test", base_url=alive.url, api_key="sk")
            chain = FallbackModel(
                [primary, replica], CircuitBreakers(threshold=2, cooldown=60), NO_RETRY
            )
            for _ in range(5):
                assert (await chain.respond(ASK)).text == "from the replica"
            assert len(dead.requests) == 2, "after two failures the primary's circuit is open"


# -- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PATHS
async def test_a_transient_error_is_retried(
    models: dict[str, Any], protocol: str, streaming: bool
) -> None:
    model, server = models[protocol]
    fail(server, 500)
    fail(server, 529)
    server.reply("recovered")
    assert await ask(FallbackModel([model], retries=FAST), streaming) == "recovered"
    assert len(server.requests) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PATHS
async def test_retry_after_is_honoured(
    models: dict[str, Any], protocol: str, streaming: bool
) -> None:
    model, server = models[protocol]
    fail(server, 429, retry_after="0.3")
    server.reply("after the wait")
    started = time.monotonic()
    assert await ask(FallbackModel([model], retries=FAST), streaming) == "after the wait"
    assert time.monotonic() - started >= 0.3 and len(server.requests) == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PATHS
async def test_no_wait_ends_past_the_runs_deadline(
    models: dict[str, Any], protocol: str, streaming: bool
) -> None:
    """A Retry-After longer than the time left means: fall back now."""
    model, server = models[protocol]
    fail(server, 429, retry_after="5")
    chain = FallbackModel([model], retries=FAST)
    started = time.monotonic()
    with deadline(asyncio.get_running_loop().time() + 2), pytest.raises(ModelError) as caught:
        await ask(chain, streaming)
    assert caught.value.code == "model.rate_limited"
    assert time.monotonic() - started < 1 and len(server.requests) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@PATHS
async def test_a_permanent_error_is_not_retried(
    models: dict[str, Any], protocol: str, streaming: bool
) -> None:
    model, server = models[protocol]
    fail(server, 401)
    with pytest.raises(ModelError) as caught:
        await ask(FallbackModel([model], retries=FAST), streaming)
    assert caught.value.code == "model.auth" and len(server.requests) == 1


async def test_a_stream_that_delivered_text_is_not_restarted(oai: OpenAIServer) -> None:
    oai.enqueue(Stream(["partial"], truncate_after=2))
    oai.reply("whole")
    model = OpenAICompatModel("gpt-test", base_url=oai.base_url, api_key="sk")
    seen: list[str] = []
    with pytest.raises(ModelError) as caught:
        async for item in FallbackModel([model], retries=FAST).stream(ASK):
            assert isinstance(item, TextDelta)
            seen.append(item.text)
    assert caught.value.code == "model.truncated" and seen == ["partial"]
    assert len(oai.requests) == 1 and oai.pending == 1


# -- every attempt on the record ------------------------------------------------------------


async def test_every_failed_attempt_and_breaker_change_is_reported(oai: OpenAIServer) -> None:
    events: list[Event] = []
    model = OpenAICompatModel("gpt-test", base_url=oai.base_url, api_key="sk")
    chain = FallbackModel([model], CircuitBreakers(threshold=2, cooldown=0.1), FAST)
    fail(oai, 503)
    fail(oai, 503)
    with reporting(events.append):
        with pytest.raises(ModelError) as caught:
            await asyncio.wait_for(chain.respond(ASK), 5)
        assert caught.value.code == "model.unavailable"
        await asyncio.sleep(0.15)
        oai.reply("healthy")
        assert (await chain.respond(ASK)).text == "healthy"
    failed = [e for e in events if isinstance(e, ModelFailed)]
    assert [(e.code, e.attempt) for e in failed] == [
        ("model.unavailable", 1),
        ("model.unavailable", 2),
    ]
    assert failed[0].endpoint == f"openai:gpt-test@{oai.base_url}/" and failed[0].elapsed_ms >= 0
    assert [type(e) for e in events if not isinstance(e, ModelFailed)] == [
        ModelBreakerOpened,
        ModelBreakerClosed,
    ]
