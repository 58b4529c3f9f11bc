"""AnthropicModel against a loopback server speaking the Messages API wire format."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from steward.core.errors import ModelError, ProviderError
from steward.core.messages import Message, ModelResponse, ToolCall, ToolSpec
from steward.models.protocol import Model, ModelRequest, StreamEnd, StreamingModel, TextDelta
from steward.models.providers.anthropic_messages import AnthropicModel

from .anthropic_server import AnthropicServer

KEY = "sk-ant-test-key"
LOOKUP = ToolSpec(
    "lookup",
    "Look a record up by id.",
    {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as running:
        yield running


@pytest.fixture
async def model(server: AnthropicServer) -> AsyncIterator[AnthropicModel]:
    m = AnthropicModel("claude-test", base_url=server.url, api_key=KEY, timeout=5.0)
    yield m
    await m.aclose()


def ask(text: str = "Hi", **kw: Any) -> ModelRequest:
    return ModelRequest((Message("user", text),), **kw)


async def collect(model: AnthropicModel, request: ModelRequest) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    end: ModelResponse | None = None
    async for event in model.stream(request):
        assert end is None, "StreamEnd must be last"
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            assert isinstance(event, StreamEnd)
            end = event.response
    assert end is not None
    return deltas, end


async def test_protocols_and_text_answer(server: AnthropicServer, model: AnthropicModel) -> None:
    assert isinstance(model, Model) and isinstance(model, StreamingModel)
    server.reply("Hello there.")
    response = await model.respond(ask())
    assert response.model == "anthropic:claude-test"
    assert (response.text, response.tool_calls, response.finish_reason) == (
        "Hello there.",
        (),
        "stop",
    )
    assert response.confidence is None
    sent = server.requests[0]
    assert sent.path == "/v1/messages" and sent.body["model"] == "claude-test"
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert "system" not in sent.body and "tools" not in sent.body and "temperature" not in sent.body


async def test_tool_use_round_trip(server: AnthropicServer, model: AnthropicModel) -> None:
    server.reply("Let me look.", tool_calls=[("lookup", {"id": 7}), ("lookup", {"id": 8})])
    history = [Message("system", "You are terse."), Message("user", "Records 7 and 8?")]
    first = await model.respond(ModelRequest(tuple(history), tools=(LOOKUP,)))
    assert first.finish_reason == "tool_calls" and first.text == "Let me look."
    assert first.tool_calls == (ToolCall("toolu_001", "lookup", {"id": 7}),
                                ToolCall("toolu_002", "lookup", {"id": 8}))  # fmt: skip

    server.reply("7 is Ada, 8 is Grace.")
    history += [
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", '{"name": "Ada"}', tool_call_id="toolu_001", name="lookup"),
        Message("tool", '{"name": "Grace"}', tool_call_id="toolu_002", name="lookup"),
    ]
    request = ModelRequest(tuple(history), tools=(LOOKUP,), max_output_tokens=256, temperature=0.0)
    second = await model.respond(request)
    assert second.text == "7 is Ada, 8 is Grace." and second.is_final

    body = server.requests[1].body
    assert body["system"] == "You are terse."
    assert body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert server.requests[0].body["max_tokens"] == 4096  # default_max_tokens
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_001", "name": "lookup", "input": {"id": 7}},
        {"type": "tool_use", "id": "toolu_002", "name": "lookup", "input": {"id": 8}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_001", "content": '{"name": "Ada"}'},
        {"type": "tool_result", "tool_use_id": "toolu_002", "content": '{"name": "Grace"}'},
    ]
    assert body["tools"] == [
        {"name": "lookup", "description": LOOKUP.description, "input_schema": LOOKUP.parameters}
    ]
    assert "tool_choice" not in body
    headers = server.requests[1].headers
    assert headers["anthropic-version"]
    # this SDK release sends the key as a bearer token; older ones used x-api-key
    assert headers.get("x-api-key") == KEY or headers.get("authorization") == f"Bearer {KEY}"


async def test_usage_counts_cache_reads(server: AnthropicServer, model: AnthropicModel) -> None:
    usage = {"input_tokens": 12, "output_tokens": 30, "cache_read_input_tokens": 900,
             "cache_creation_input_tokens": 88}  # fmt: skip
    server.reply("cached", usage=usage)
    server.reply("cached again", usage=usage)
    for response in (await model.respond(ask()), (await collect(model, ask()))[1]):
        # steward counts cached tokens inside input_tokens (pricing.Rate.cost)
        assert response.usage.input_tokens == 12 + 900 + 88
        assert response.usage.cached_input_tokens == 900
        assert response.usage.cache_write_tokens == 88
        assert response.usage.output_tokens == 30


def test_cache_writes_are_priced_at_the_cache_write_rate() -> None:
    from steward.core.messages import Usage
    from steward.models.pricing import default_prices

    rate = default_prices().rate("anthropic:claude-sonnet-4-5")
    assert rate is not None and rate.cache_write == 3.75
    usage = Usage(input_tokens=12 + 900 + 88, output_tokens=30, cached_input_tokens=900,
                  cache_write_tokens=88)  # fmt: skip
    expected = (12 * 3.00 + 900 * 0.30 + 88 * 3.75 + 30 * 15.00) / 1e6
    assert rate.cost(usage) == pytest.approx(expected)


async def test_stream_text(server: AnthropicServer, model: AnthropicModel) -> None:
    server.reply("Streaming is fun to watch.", text_pieces=4)
    deltas, end = await collect(model, ask())
    assert len(deltas) == 4 and "".join(deltas) == "Streaming is fun to watch."
    assert end.text == "Streaming is fun to watch." and end.finish_reason == "stop"
    assert end.usage.output_tokens == 5
    assert server.requests[0].stream


async def test_stream_tool_use(server: AnthropicServer, model: AnthropicModel) -> None:
    args = {"id": 7, "filters": {"tags": ["a", "b"], "note": "é ü"}}
    server.reply("Checking.", tool_calls=[("lookup", args), ("lookup", {})])
    deltas, end = await collect(model, ask(tools=(LOOKUP,)))
    assert "".join(deltas) == "Checking."
    assert end.tool_calls == (
        ToolCall("toolu_001", "lookup", args),
        ToolCall("toolu_002", "lookup", {}),
    )
    assert end.finish_reason == "tool_calls"


@pytest.mark.parametrize("streaming", [False, True])
async def test_structured_output(
    server: AnthropicServer, model: AnthropicModel, streaming: bool
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    server.reply(tool_calls=[("answer", {"city": "Paris"})])
    request = ask("Capital of France?", output_schema=schema)
    response = (await collect(model, request))[1] if streaming else await model.respond(request)
    assert json.loads(response.text) == {"city": "Paris"}
    assert response.tool_calls == () and response.finish_reason == "stop"
    body = server.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][-1]["name"] == "answer" and body["tools"][-1]["input_schema"] == schema


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("max_tokens", "length"), ("model_context_window_exceeded", "length"),
     ("refusal", "content_filter"), ("stop_sequence", "stop")],
)  # fmt: skip
async def test_stop_reasons_say_whether_the_answer_was_cut_off(
    server: AnthropicServer, model: AnthropicModel, streaming: bool, stop_reason: str, finish: str
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    server.reply(tool_calls=[("answer", {"city": "Par"})], stop_reason=stop_reason)
    request = ask("Capital of France?", output_schema=schema)
    response = (await collect(model, request))[1] if streaming else await model.respond(request)
    assert response.finish_reason == finish, "a structured answer cut off is still cut off"
    assert response.cut_off is (finish != "stop") and response.is_final is (finish == "stop")


async def test_structured_output_non_object_and_with_tools(
    server: AnthropicServer, model: AnthropicModel
) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    server.reply(tool_calls=[("answer", {"answer": [1, 2, 3]})])
    response = await model.respond(ask(output_schema=schema, tools=(LOOKUP,)))
    assert json.loads(response.text) == [1, 2, 3]
    body = server.requests[0].body
    assert body["tools"][-1]["input_schema"]["properties"]["answer"] == schema
    assert body["tool_choice"] == {"type": "any"}  # the model may still call lookup


FAULTS = [  # (status, scripting kwargs, code, retryable, retry_after)
    (429, {"retry_after": 7}, "model.rate_limited", True, 7.0),
    (500, {}, "model.unavailable", True, None),
    (502, {}, "model.unavailable", True, None),
    (503, {}, "model.unavailable", True, None),
    (529, {"error_type": "overloaded_error"}, "model.unavailable", True, None),
    (401, {}, "model.auth", False, None),
    (403, {}, "model.auth", False, None),
    (400, {}, "model.bad_request", False, None),
    (404, {}, "model.bad_request", False, None),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["respond", "stream"])
@pytest.mark.parametrize(("status", "kw", "code", "retryable", "retry_after"), FAULTS)
async def test_http_faults(
    server: AnthropicServer,
    model: AnthropicModel,
    streaming: bool,
    status: int,
    kw: dict[str, Any],
    code: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    server.status(status, **kw)
    with pytest.raises(ProviderError) as caught:
        await (collect(model, ask()) if streaming else model.respond(ask()))
    err = caught.value
    assert (err.code, err.retryable, err.retry_after) == (code, retryable, retry_after)
    assert err.provider == "anthropic" and err.status == status


async def test_malformed_tool_input_in_stream(
    server: AnthropicServer, model: AnthropicModel
) -> None:
    server.malformed_tool_stream("lookup")
    with pytest.raises(ProviderError) as caught:
        await collect(model, ask(tools=(LOOKUP,)))
    assert caught.value.code == "model.bad_response" and "'lookup'" in str(caught.value)


@pytest.mark.parametrize("clean", [False, True], ids=["dropped", "ended-early"])
async def test_truncated_stream(
    server: AnthropicServer, model: AnthropicModel, clean: bool
) -> None:
    server.truncated_stream("partial answer", clean=clean)
    seen: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for event in model.stream(ask()):
            assert isinstance(event, TextDelta), "no StreamEnd for a truncated stream"
            seen.append(event.text)
    assert seen, "text before the cut is still delivered"
    assert (caught.value.code, caught.value.retryable) == ("model.truncated", True)


async def test_error_event_in_stream(server: AnthropicServer, model: AnthropicModel) -> None:
    server.error_in_stream("overloaded_error")
    with pytest.raises(ProviderError) as caught:
        await collect(model, ask())
    assert (caught.value.code, caught.value.retryable) == ("model.unavailable", True)
    assert "overloaded_error" in str(caught.value)


@pytest.mark.parametrize("where", ["respond", "stream-start", "mid-stream"])
async def test_timeouts_are_bounded(server: AnthropicServer, where: str) -> None:
    quick = AnthropicModel("claude-test", base_url=server.url, api_key=KEY, timeout=0.3)
    if where == "mid-stream":
        server.hang_mid_stream(5)
    else:
        server.hang(5)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            await (quick.respond(ask()) if where == "respond" else collect(quick, ask()))
    finally:
        await quick.aclose()
    assert time.monotonic() - started < 3.0
    assert (caught.value.code, caught.value.retryable) == ("model.timeout", True)


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = AnthropicModel(
        "claude-test", base_url=f"http://127.0.0.1:{port}", api_key=KEY, timeout=2.0
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await dead.respond(ask())
    finally:
        await dead.aclose()
    assert (caught.value.code, caught.value.retryable) == ("model.unavailable", True)


async def test_tool_result_without_call_id_is_a_bad_request(model: AnthropicModel) -> None:
    with pytest.raises(ProviderError) as caught:
        await model.respond(ModelRequest((Message("user", "x"), Message("tool", "result"))))
    assert (caught.value.code, caught.value.retryable) == ("model.bad_request", False)


async def test_from_env(monkeypatch: pytest.MonkeyPatch, server: AnthropicServer) -> None:
    monkeypatch.delenv("STEWARD_TEST_ANTHROPIC_KEY", raising=False)
    with pytest.raises(ModelError) as caught:
        AnthropicModel.from_env("claude-test", api_key_env="STEWARD_TEST_ANTHROPIC_KEY")
    assert caught.value.code == "model.auth" and "STEWARD_TEST_ANTHROPIC_KEY" in str(caught.value)

    monkeypatch.setenv("STEWARD_TEST_ANTHROPIC_KEY", KEY)
    env_model = AnthropicModel.from_env(
        "claude-test", base_url=server.url, api_key_env="STEWARD_TEST_ANTHROPIC_KEY"
    )
    server.reply("ok")
    try:
        assert (await env_model.respond(ask())).text == "ok"
    finally:
        await env_model.aclose()
    assert env_model.name == "anthropic:claude-test"


@pytest.mark.parametrize("streaming", [False, True])
async def test_dotted_tool_names_go_out_as_the_api_allows_and_come_back(
    server: AnthropicServer, model: AnthropicModel, streaming: bool
) -> None:
    add = ToolSpec("calc.add", "Add.", {"type": "object"})
    history = (Message("user", "1+1?"),
               Message("assistant", "", tool_calls=(ToolCall("t0", "calc.add", {"a": 1}),)),
               Message("tool", "2", tool_call_id="t0", name="calc.add"))  # fmt: skip
    request = ModelRequest(history, tools=(add,))
    server.reply("", tool_calls=[("calc__add", {"a": 2})])
    if streaming:
        _, response = await collect(model, request)
    else:
        response = await model.respond(request)
    assert [c.name for c in response.tool_calls] == ["calc.add"]
    body = server.requests[-1].body
    assert [t["name"] for t in body["tools"]] == ["calc__add"]
    assert body["messages"][1]["content"][-1]["name"] == "calc__add"
