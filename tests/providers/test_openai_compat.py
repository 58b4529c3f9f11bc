"""OpenAICompatModel against a loopback server speaking the real Chat Completions protocol."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from steward.core.errors import ModelError, ProviderError
from steward.core.messages import Message, ModelResponse, ToolCall, ToolSpec, Usage
from steward.models.protocol import (
    Model,
    ModelRequest,
    StreamEnd,
    StreamEvent,
    StreamingModel,
    TextDelta,
)
from steward.models.providers._http import parse_retry_after
from steward.models.providers.openai_compat import OpenAICompatModel
from steward.models.tokens import count_text

from .openai_server import Behaviour, Hang, OpenAIServer, Reply, Status, Stream, usage

KEY = "sk-loopback-test"
ASK = ModelRequest(messages=(Message("user", "hello"),))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("OPENAI_CUSTOM_HEADERS", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with OpenAIServer() as s:
        yield s


def make(server: OpenAIServer, timeout: float = 5.0) -> OpenAICompatModel:
    return OpenAICompatModel("gpt-test", base_url=server.base_url, api_key=KEY, timeout=timeout)


@pytest.fixture
async def model(server: OpenAIServer) -> AsyncIterator[OpenAICompatModel]:
    async with make(server) as m:
        yield m


async def collect(m: OpenAICompatModel, request: ModelRequest = ASK) -> list[StreamEvent]:
    return [event async for event in m.stream(request)]


async def fails(m: OpenAICompatModel, stream: bool = False) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        if stream:
            await collect(m)
        else:
            await m.respond(ASK)
    assert info.value.provider == "openai"
    return info.value


# -- answers ------------------------------------------------------------------------------


async def test_text_answer(server: OpenAIServer, model: OpenAICompatModel) -> None:
    server.reply("Hello there.", usage=usage(12, 3))
    response = await model.respond(ASK)
    assert response == ModelResponse(
        model="openai:gpt-test",
        text="Hello there.",
        finish_reason="stop",
        usage=Usage(input_tokens=12, output_tokens=3),
    )
    assert response.confidence is None and response.is_final
    assert isinstance(model, Model) and isinstance(model, StreamingModel)


async def test_tool_call_with_parsed_args_and_cached_usage(
    server: OpenAIServer, model: OpenAICompatModel
) -> None:
    args = {"order_id": "A-17", "items": [1, 2], "rush": True}
    server.reply(None, tool_calls=[("lookup", args), ("noop", "")], usage=usage(120, 30, cached=96))
    response = await model.respond(ASK)
    assert response.tool_calls == (
        ToolCall("call_0", "lookup", args),
        ToolCall("call_1", "noop", {}),
    )
    assert response.text == "" and response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=120, output_tokens=30, cached_input_tokens=96)
    assert not response.is_final


async def test_request_mapping(server: OpenAIServer, model: OpenAICompatModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    params = {"type": "object", "properties": {"id": {"type": "integer"}}}
    request = ModelRequest(
        messages=(
            Message("system", "You are careful."),
            Message("user", "Find order 7.", name="alice"),
            Message("assistant", "", tool_calls=(ToolCall("call_a", "lookup", {"id": 7}),)),
            Message("tool", '{"status": "shipped"}', tool_call_id="call_a"),
        ),
        tools=(ToolSpec("lookup", "Look an order up.", params),),
        max_output_tokens=256,
        temperature=0.2,
        output_schema=schema,
    )
    server.reply('{"answer": "shipped"}')
    assert (await model.respond(request)).text == '{"answer": "shipped"}'
    [seen] = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    body = seen.body
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": "Find order 7.", "name": "alice"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"id": 7}'},
                }
            ],
        },
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_a"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look an order up.",
                "parameters": params,
            },
        }
    ]
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body
    assert body["temperature"] == 0.2
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert "stream" not in body


async def test_optional_fields_are_left_out(server: OpenAIServer, model: OpenAICompatModel) -> None:
    server.reply("ok")
    await model.respond(ASK)
    body = server.requests[0].body
    assert set(body) == {"model", "messages"}


async def test_refusal_is_the_answer_text(server: OpenAIServer, model: OpenAICompatModel) -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
    body = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [choice],
    }
    server.raw(200, json.dumps(body).encode())
    response = await model.respond(ASK)
    assert response.text == "I can't help with that."
    assert response.usage.estimated and response.usage.output_tokens > 0, "no usage: counted here"


# -- streaming ----------------------------------------------------------------------------


async def test_stream_text_deltas_then_response(
    server: OpenAIServer, model: OpenAICompatModel
) -> None:
    server.stream(["Hel", "lo", ", wor", "ld"], usage=usage(9, 4, cached=2))
    events = await collect(model)
    assert events[:-1] == [TextDelta("Hel"), TextDelta("lo"), TextDelta(", wor"), TextDelta("ld")]
    assert events[-1] == StreamEnd(
        ModelResponse(
            model="openai:gpt-test",
            text="Hello, world",
            finish_reason="stop",
            usage=Usage(input_tokens=9, output_tokens=4, cached_input_tokens=2),
        )
    )
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("interleave", [False, True])
async def test_stream_tool_calls_split_across_chunks(
    server: OpenAIServer, model: OpenAICompatModel, interleave: bool
) -> None:
    first = {"query": "late orders", "limit": 5, "filters": {"region": "EU"}}
    second = {"id": 7}
    server.stream(
        ["Let me check."],
        tool_calls=[("search", first), ("lookup", second)],
        split=4,
        interleave=interleave,
    )
    events = await collect(model)
    assert events[0] == TextDelta("Let me check.")
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.tool_calls == (
        ToolCall("call_0", "search", first),
        ToolCall("call_1", "lookup", second),
    )
    assert end.response.finish_reason == "tool_calls" and end.response.text == "Let me check."


def test_server_splits_tool_arguments_over_several_chunks(server: OpenAIServer) -> None:
    """The fixture really sends argument fragments, so the test above exercises assembly."""
    server.stream(tool_calls=[("search", {"query": "late orders", "limit": 5})], split=3)
    payload = json.dumps({"model": "m", "messages": [], "stream": True}).encode()
    request = urllib.request.Request(f"{server.base_url}/chat/completions", payload, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
        lines = [
            line for line in response.read().decode().splitlines() if line.startswith("data: ")
        ]
    assert lines[-1] == "data: [DONE]"
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines[:-1]]
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d]
    assert fragments[0] == "" and len(fragments[1:]) >= 3
    assert json.loads("".join(fragments)) == {"query": "late orders", "limit": 5}


async def test_reply_behaviour_also_serves_streams(
    server: OpenAIServer, model: OpenAICompatModel
) -> None:
    server.reply("whole")
    events = await collect(model)
    assert events[0] == TextDelta("whole") and isinstance(events[-1], StreamEnd)


# -- faults -------------------------------------------------------------------------------

FAULTS = [
    (Status(429, headers={"Retry-After": "2"}), "model.rate_limited", True, 2.0),
    (Status(429, headers={"retry-after-ms": "1500"}), "model.rate_limited", True, 1.5),
    (Status(429, error_code="insufficient_quota"), "model.rate_limited", False, None),
    (Status(500), "model.unavailable", True, None),
    (Status(502), "model.unavailable", True, None),
    (Status(503, headers={"Retry-After": "7"}), "model.unavailable", True, 7.0),
    (Status(529, message="Overloaded"), "model.unavailable", True, None),
    (Status(401, error_type="invalid_request_error"), "model.auth", False, None),
    (Status(403), "model.auth", False, None),
    (Status(400, error_type="invalid_request_error"), "model.bad_request", False, None),
    (Status(404), "model.bad_request", False, None),
    (Status(422), "model.bad_request", False, None),
    (Reply(tool_calls=[("lookup", "{not json")]), "model.bad_response", False, None),
    (Reply(tool_calls=[("lookup", "[1, 2]")]), "model.bad_response", False, None),
]
FAULT_IDS = [
    *(f"http-{b.code}-{i}" for i, (b, *_) in enumerate(FAULTS) if isinstance(b, Status)),
    "args-not-json",
    "args-not-object",
]


@pytest.mark.parametrize(("behaviour", "code", "retryable", "retry_after"), FAULTS, ids=FAULT_IDS)
async def test_faults_map_to_provider_errors(
    server: OpenAIServer,
    model: OpenAICompatModel,
    behaviour: Behaviour,
    code: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    for stream in (False, True):  # the same fault, answered to respond() then to stream()
        server.enqueue(behaviour)
        error = await fails(model, stream)
        assert (error.code, error.retryable, error.retry_after) == (code, retryable, retry_after)
        if isinstance(behaviour, Status):
            assert error.status == behaviour.code and behaviour.message in error.message
        else:
            assert "'lookup'" in error.message


async def test_retry_after_as_http_date(server: OpenAIServer, model: OpenAICompatModel) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.status(429, headers={"Retry-After": when})
    error = await fails(model)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    "behaviour",
    [
        Stream(["partial"], truncate_after=2),  # cut mid-body, before the finish chunk
        Stream(["partial"], finish_reason=None),  # [DONE] but never a finish_reason
        Stream(["partial"], finish_reason=None, done=False, usage=None),  # clean EOF, no end
    ],
    ids=["cut", "no-finish", "eof"],
)
async def test_truncated_stream(
    server: OpenAIServer, model: OpenAICompatModel, behaviour: Stream
) -> None:
    server.enqueue(behaviour)
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        async for event in model.stream(ASK):
            seen.append(event)
    assert (info.value.code, info.value.retryable) == ("model.truncated", True)
    assert seen == [TextDelta("partial")]


async def test_a_stream_cut_after_its_finish_reason_is_truncated_not_free(
    server: OpenAIServer, model: OpenAICompatModel
) -> None:
    """finish_reason arrived, then the connection ended cleanly: no usage chunk, no [DONE].
    That is not a complete response, so it is not accepted at 0 tokens and $0."""
    server.enqueue(Stream(["The answer is 42."], usage=None, done=False))
    with pytest.raises(ProviderError) as info:
        await collect(model)
    assert (info.value.code, info.value.retryable) == ("model.truncated", True)
    assert "[DONE]" in info.value.message


@pytest.mark.parametrize("stream", [False, True], ids=["respond", "stream"])
async def test_missing_usage_is_estimated_offline_and_marked(
    server: OpenAIServer, model: OpenAICompatModel, stream: bool
) -> None:
    """A server that reports no usage (a local server ignoring stream_options): the tokens
    are counted with the offline tokenizer and the usage says it is an estimate."""
    server.reply("The answer is 42.", usage=None)
    if stream:
        end = (await collect(model))[-1]
        assert isinstance(end, StreamEnd)
        response = end.response
    else:
        response = await model.respond(ASK)
    assert response.usage.estimated
    assert response.usage.input_tokens > 0 and response.usage.output_tokens == count_text(
        "gpt-test", "The answer is 42."
    )


async def test_reported_usage_is_not_marked_estimated(
    server: OpenAIServer, model: OpenAICompatModel
) -> None:
    server.stream(["ok"], usage=usage(9, 1))
    end = (await collect(model))[-1]
    assert isinstance(end, StreamEnd) and not end.response.usage.estimated
    assert end.response.usage.input_tokens == 9


async def test_error_event_inside_stream(server: OpenAIServer, model: OpenAICompatModel) -> None:
    event = {"error": {"message": "The server is overloaded", "type": "server_error", "code": None}}
    server.raw(200, f"data: {json.dumps(event)}\n\n".encode(), "text/event-stream")
    error = await fails(model, stream=True)
    assert (error.code, error.retryable) == ("model.unavailable", True)
    assert "overloaded" in error.message


async def test_non_json_body_is_mapped(server: OpenAIServer, model: OpenAICompatModel) -> None:
    server.raw(200, b"<html>gateway</html>", "application/json")
    error = await fails(model)
    assert error.code == "model.bad_response" and not error.retryable


async def test_connection_refused(server: OpenAIServer) -> None:
    url = server.base_url
    server.stop()
    async with OpenAICompatModel("gpt-test", base_url=url, api_key=KEY, timeout=2.0) as m:
        for stream in (False, True):
            error = await fails(m, stream)
            assert (error.code, error.retryable) == ("model.unavailable", True)


@pytest.mark.parametrize(
    "behaviour",
    [Hang(5), Hang(5, then=Reply("late")), Stream(["a", "b"], pause=5)],
    ids=["hang", "hang-then-reply", "stall-mid-stream"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["respond", "stream"])
async def test_timeout(server: OpenAIServer, behaviour: Behaviour, stream: bool) -> None:
    server.enqueue(behaviour)
    started = time.monotonic()
    async with make(server, timeout=0.3) as m:
        error = await fails(m, stream)
    assert (error.code, error.retryable) == ("model.timeout", True)
    assert time.monotonic() - started < 2.0


# -- configuration ------------------------------------------------------------------------


def test_from_env_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_TEST_OPENAI_KEY", raising=False)
    with pytest.raises(ModelError) as info:
        OpenAICompatModel.from_env("gpt-test", api_key_env="STEWARD_TEST_OPENAI_KEY")
    assert info.value.code == "model.auth"
    assert "STEWARD_TEST_OPENAI_KEY" in str(info.value)
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    with pytest.raises(ModelError, match="OPENAI_API_KEY") as info:
        OpenAICompatModel.from_env("gpt-test")
    assert info.value.code == "model.auth"


async def test_from_env_uses_the_key(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEST_OPENAI_KEY", "sk-from-env")
    server.reply("ok")
    m = OpenAICompatModel.from_env(
        "local-llm", base_url=server.base_url, api_key_env="STEWARD_TEST_OPENAI_KEY"
    )
    async with m:
        response = await m.respond(ASK)
    assert response.model == "openai:local-llm" and m.name == "openai:local-llm"
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-env"


def test_constructor() -> None:
    m = OpenAICompatModel("m", api_key="k", name="vllm:m", base_url="http://127.0.0.1:1/v1")
    assert m.name == "vllm:m"
    with pytest.raises(ModelError) as info:
        OpenAICompatModel("m", api_key="")
    assert info.value.code == "model.auth"


@pytest.mark.parametrize("streaming", [False, True])
async def test_dotted_tool_names_go_out_as_the_api_allows_and_come_back(
    server: OpenAIServer, model: OpenAICompatModel, streaming: bool
) -> None:
    """An MCP tool's `server.tool` is sent as `server__tool` (the API's names take no dot)
    and the call comes back under the tool's own name."""
    add = ToolSpec("calc.add", "Add.", {"type": "object"})
    history = (Message("user", "1+1?"),
               Message("assistant", "", tool_calls=(ToolCall("c0", "calc.add", {"a": 1}),)),
               Message("tool", "2", tool_call_id="c0", name="calc.add"))  # fmt: skip
    request = ModelRequest(messages=history, tools=(add, ToolSpec("a__b", "", {})))
    if streaming:
        server.stream(tool_calls=[("calc__add", {"a": 2}), ("a__b", {})])
        events = await collect(model, request)
        end = events[-1]
        assert isinstance(end, StreamEnd)
        response = end.response
    else:
        server.reply(None, tool_calls=[("calc__add", {"a": 2}), ("a__b", {})])
        response = await model.respond(request)
    assert [c.name for c in response.tool_calls] == ["calc.add", "a__b"]
    body = server.requests[-1].body
    assert [t["function"]["name"] for t in body["tools"]] == ["calc__add", "a__b"]
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "calc__add"
