"""The semantic response cache, and its wiring into the runner, with a deterministic fake
embedder (no model needed): each test text has a chosen angle in a plane, so the cosine
similarity of two texts is the cosine of the angle between them."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from steward.core.errors import ProviderError, SpecError
from steward.core.events import ModelResponded, RunStatus
from steward.core.messages import Message, ModelResponse, ToolSpec
from steward.engines.embedded import EmbeddedEngine
from steward.models import embeddings
from steward.models.embeddings import Vectors
from steward.models.protocol import ModelRequest
from steward.models.semantic_cache import (
    SemanticCache,
    numbers_in,
    request_text,
    same_numbers,
    semantic_scope,
)
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

# angles in degrees: cos(18°) ≈ 0.951, cos(60°) = 0.5
ANGLES = {
    "Where is my order?": 0.0,
    "Can you tell me the status of my order?": 18.0,
    "What is the capital of France?": 60.0,
    "Where is order 10234?": 90.0,
    "Where is order 10243?": 90.0,  # the embedding cannot tell them apart; the guard can
    "Is order #10234 on its way?": 100.0,
}


class Fake:
    name = "fake"
    dimensions = 3

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self.lock:
            self.seen.extend(texts)
        rows = []
        for text in texts:
            if text in ANGLES:
                a = math.radians(ANGLES[text])
                rows.append([math.cos(a), math.sin(a), 0.0])
            else:  # anything else: its own direction, far from the plane
                seed = sum(map(ord, text))
                rows.append([0.01 * (seed % 7), 0.01 * (seed % 5), 1.0])
        return embeddings.normalise(np.array(rows))


def answer(text: str = "Order 10234 shipped on Monday.") -> ModelResponse:
    return ModelResponse("m", text)


def cache(threshold: float = 0.9, **kw: Any) -> SemanticCache:
    return SemanticCache(Fake(), threshold, kw.pop("ttl_seconds", 60.0), **kw)


# -- SemanticCache -------------------------------------------------------------------------


def test_a_paraphrase_above_the_threshold_hits() -> None:
    c = cache(0.9)
    c.put("s", "Where is my order?", answer())
    found = c.get("s", "Can you tell me the status of my order?")
    assert found is not None
    response, similarity = found
    assert response.text == answer().text
    assert similarity == pytest.approx(math.cos(math.radians(18)), abs=1e-5)
    assert (c.hits, c.misses) == (1, 0)


def test_below_the_threshold_is_a_miss() -> None:
    c = cache(0.96)
    c.put("s", "Where is my order?", answer())
    assert c.get("s", "Can you tell me the status of my order?") is None
    assert c.get("s", "What is the capital of France?") is None
    assert (c.hits, c.misses) == (0, 2)


def test_the_number_guard_refuses_different_numbers() -> None:
    guarded, open_ = cache(0.9), cache(0.9, number_guard=False)
    for c in (guarded, open_):
        c.put("s", "Where is order 10234?", answer())
    assert guarded.get("s", "Where is order 10243?") is None and guarded.guarded == 1
    assert open_.get("s", "Where is order 10243?") is not None, "the false hit it prevents"
    assert guarded.get("s", "Is order #10234 on its way?") is not None, "same number: a hit"


def test_numbers_are_normalised_and_compared_as_multisets() -> None:
    assert numbers_in("Refund $1,200.50 for 2 items") == ("1200.5", "2")
    assert same_numbers("refund $1,200.50", "refund 1200.5 dollars")
    assert not same_numbers("order 007", "order 7"), "leading zeros may be part of an id"
    assert not same_numbers("Where is my order?", "Where is my order 123?")
    assert not same_numbers("5 and 5", "5")


def test_entries_expire_after_the_ttl() -> None:
    c = cache(0.9, ttl_seconds=10)
    c.put("s", "Where is my order?", answer(), now=100.0)
    assert c.get("s", "Where is my order?", now=109.0) is not None
    assert c.get("s", "Where is my order?", now=110.0) is None
    assert len(c) == 0


def test_scopes_are_isolated() -> None:
    c = cache(0.9)
    c.put("agent@v1", "Where is my order?", answer())
    assert c.get("agent@v2", "Where is my order?") is None
    assert c.get("agent@v1", "Where is my order?") is not None


def test_the_most_similar_entry_wins() -> None:
    c = cache(0.4)
    c.put("s", "What is the capital of France?", answer("Paris"))
    c.put("s", "Can you tell me the status of my order?", answer("status"))
    found = c.get("s", "Where is my order?")
    assert found is not None and found[0].text == "status"


def test_past_max_entries_the_least_recently_used_goes() -> None:
    c = cache(0.9, max_entries=2)
    c.put("x", "Where is my order?", answer("x"))
    c.put("y", "Where is my order?", answer("y"))
    assert c.get("x", "Where is my order?") is not None  # x is now the most recent
    c.put("z", "Where is my order?", answer("z"))
    assert len(c) == 2
    assert c.get("y", "Where is my order?") is None
    assert c.get("x", "Where is my order?") is not None


def test_putting_the_same_text_again_replaces_it() -> None:
    c = cache(0.9)
    c.put("s", "Where is my order?", answer("old"))
    c.put("s", "Where is my order?", answer("new"))
    found = c.get("s", "Where is my order?")
    assert len(c) == 1 and found is not None and found[0].text == "new"


def test_concurrent_use_from_threads() -> None:
    c = cache(0.9, max_entries=50)
    texts = [f"question {i}" for i in range(40)]

    def work(offset: int) -> None:
        for i in range(200):
            text = texts[(i + offset) % len(texts)]
            c.put(f"s{i % 3}", text, answer(text))
            c.get(f"s{(i + 1) % 3}", text)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(c) <= 50 and c.hits + c.misses == 8 * 200


def test_the_threshold_must_be_in_range() -> None:
    with pytest.raises(ValueError):
        cache(0.0)
    with pytest.raises(ValueError):
        cache(1.01)


def test_the_scope_covers_everything_but_the_request_text() -> None:
    def request(text: str, prompt: str = "be brief", tools: tuple[ToolSpec, ...] = ()) -> Any:
        return ModelRequest((Message("system", prompt), Message("user", text)), tools)

    base = semantic_scope("a@v1", "m", request("Where is my order?"))
    assert base == semantic_scope("a@v1", "m", request("Can you tell me the status?"))
    assert base != semantic_scope("a@v1", "m", request("Where is my order?", "be verbose"))
    assert base != semantic_scope("a@v2", "m", request("Where is my order?"))
    assert base != semantic_scope("a@v1", "other", request("Where is my order?"))
    tool = ToolSpec("lookup", "look it up", {"type": "object"})
    assert base != semantic_scope("a@v1", "m", request("Where is my order?", tools=(tool,)))
    assert request_text(request("Where is my order?")) == "Where is my order?"
    assert request_text(ModelRequest((Message("system", "x"),))) is None


# -- wiring: the runner's first turn ---------------------------------------------------------

SPEC = """
name: desk
model: scripted
prompt: %s
tools: [lookup, save]
decision_authority: {autonomous: [lookup, save]}
limits: {max_run_seconds: 5}
cache: %s
"""
SEMANTIC = "{semantic: {enabled: true, threshold: 0.9}}"


@tool(effect="read")
async def lookup(q: str) -> str:
    return f"found {q}"


@tool(effect="write", keyed=True)
async def save(note: str) -> str:
    return "saved"


class Queue:
    """Answers in call order, whatever the turn (ScriptedModel answers by turn)."""

    name = "scripted"

    def __init__(self, *texts: str) -> None:
        self.responses = [final(t) for t in texts]
        self.requests: list[ModelRequest] = []

    async def respond(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return self.responses[len(self.requests) - 1]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    instance = Fake()
    monkeypatch.setattr(embeddings, "embedder_for", lambda *args, **kwargs: instance)
    return instance


@pytest.fixture
async def runner(sqlite_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(sqlite_db)
    yield Runner(EmbeddedEngine(sqlite_db, journal))
    journal.close()


def agent(model: Any, cache_config: str = SEMANTIC, prompt: str = "You help customers.") -> Any:
    return build_agent(load_spec_text(SPEC % (prompt, cache_config), "desk.yaml"), [lookup, save],
                       model=model)  # fmt: skip


def served(db: Database, run_id: str) -> list[ModelResponded]:
    return [e.event for e in read_journal(db, run_id) if isinstance(e.event, ModelResponded)]


async def test_a_paraphrased_request_is_served_from_the_cache(
    runner: Runner, sqlite_db: Database, fake: Fake
) -> None:
    model = Queue("It shipped on Monday.")
    desk = agent(model)
    first = await runner.run(desk, "Where is my order?")
    second = await runner.run(desk, "Can you tell me the status of my order?")
    assert first.output == second.output == "It shipped on Monday."
    assert len(model.requests) == 1
    [event] = served(sqlite_db, second.run_id)
    assert event.cached and event.step == 0 and event.response.usage.cost_usd == 0


async def test_a_different_request_asks_the_model(runner: Runner, fake: Fake) -> None:
    model = Queue("Monday.", "Paris.")
    desk = agent(model)
    await runner.run(desk, "Where is my order?")
    result = await runner.run(desk, "What is the capital of France?")
    assert result.output == "Paris." and len(model.requests) == 2


async def test_the_number_guard_holds_in_a_run(runner: Runner, fake: Fake) -> None:
    model = Queue("10234 shipped.", "10243 is late.")
    desk = agent(model)
    await runner.run(desk, "Where is order 10234?")
    result = await runner.run(desk, "Where is order 10243?")
    assert result.output == "10243 is late." and len(model.requests) == 2


async def test_entries_expire(runner: Runner, fake: Fake) -> None:
    model = Queue("one", "two")
    desk = agent(model, "{ttl_seconds: 0.05, semantic: {enabled: true, threshold: 0.9}}")
    await runner.run(desk, "Where is my order?")
    await asyncio.sleep(0.1)
    result = await runner.run(desk, "Can you tell me the status of my order?")
    assert result.output == "two" and len(model.requests) == 2


async def test_agents_with_another_prompt_do_not_share_answers(runner: Runner, fake: Fake) -> None:
    one, two = Queue("from one"), Queue("from two")
    await runner.run(agent(one), "Where is my order?")
    result = await runner.run(agent(two, prompt="You answer in French."), "Where is my order?")
    assert result.output == "from two" and len(two.requests) == 1


async def test_tool_calls_are_not_stored_and_later_turns_are_never_served(
    runner: Runner, fake: Fake
) -> None:
    script = [calls(("lookup", {"q": "order"})), final("It shipped.")]
    model = ScriptedModel(script * 2)
    desk = agent(model)
    await runner.run(desk, "Where is my order?")
    await runner.run(desk, "Can you tell me the status of my order?")
    assert len(model.requests) == 4, "step 0 answered with a tool call: nothing to serve"
    assert fake.seen == ["Where is my order?", "Can you tell me the status of my order?"], (
        "only step 0's request text was looked up; step 1 never consulted the cache"
    )


async def test_never_after_a_side_effect_nor_past_step_zero(
    runner: Runner, sqlite_db: Database, fake: Fake
) -> None:
    model = Queue(*["It shipped."] * 4)
    desk = agent(model)
    await runner.run(desk, "Where is my order?")  # stored
    events: list[Any] = []

    class Executor:
        run_id = "direct"
        tags: ClassVar[dict[str, str]] = {}

        def emit(self, event: Any) -> None:
            events.append(event)

    request = model.requests[0]  # step 0's request, as the runner built it
    caller = runner.models
    for step, after in ((0, True), (1, False), (3, True)):
        response = await caller.call(desk, Executor(), step, request, after_side_effect=after,
                                     on_text=None)  # fmt: skip
        assert response.text == "It shipped."
    assert len(model.requests) == 4 and not any(e.cached for e in events)
    hit = await caller.call(desk, Executor(), 0, request, after_side_effect=False, on_text=None)
    assert hit.text == "It shipped." and events[-1].cached and len(model.requests) == 4


async def test_an_embedder_outage_falls_back_to_the_model(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down(Fake):
        def embed(self, texts: Sequence[str]) -> Vectors:
            raise ProviderError("embeddings down", code="model.unavailable", provider="openai",
                                retryable=True)  # fmt: skip

    monkeypatch.setattr(embeddings, "embedder_for", lambda *a, **k: Down())
    model = Queue("answered")
    result = await runner.run(agent(model), "Where is my order?")
    assert (result.status, result.output) == (RunStatus.SUCCEEDED, "answered")


def test_the_spec_validates_the_semantic_settings() -> None:
    loaded = load_spec_text(SPEC % ("p", SEMANTIC), "desk.yaml")
    semantic = loaded.spec.cache.semantic
    assert (semantic.enabled, semantic.threshold, semantic.embedder) == (True, 0.9, "minilm")
    default = load_spec_text(SPEC % ("p", "{enabled: true}"), "desk.yaml").spec.cache.semantic
    assert not default.enabled and default.threshold == 0.98
    for bad in (
        "{semantic: {threshold: 0}}",
        "{semantic: {threshold: 1.5}}",
        "{semantic: {embedder: 'cohere:x'}}",
        "{semantic: {base_url: 'http://localhost:1/v1'}}",  # only for an openai embedder
        "{semantic: {enabled: true, typo: 1}}",
    ):
        with pytest.raises(SpecError):
            load_spec_text(SPEC % ("p", bad), "desk.yaml")
    ok = "{semantic: {embedder: 'openai:text-embedding-3-small', api_key_env: EMBED_KEY}}"
    assert (
        load_spec_text(SPEC % ("p", ok), "desk.yaml").spec.cache.semantic.api_key_env == "EMBED_KEY"
    )
