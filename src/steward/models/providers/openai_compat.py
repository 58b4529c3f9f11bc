"""OpenAI-compatible chat models through the official `openai` SDK (Chat Completions).

`base_url` points the same client at any server that speaks the OpenAI wire format:
vLLM, Ollama, llama.cpp server, LM Studio, Azure-style gateways. The SDK's own retries
are off (`max_retries=0`): retrying and falling back are the runner's decisions, made
from the `ProviderError` every failure is mapped to (code, retryable, retry_after).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Required, Self, TypedDict, cast

from openai import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    AsyncStream,
    OpenAIError,
)
from openai._streaming import ServerSentEvent
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from steward.core.errors import ModelError, ProviderError
from steward.core.messages import (
    Message,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
    tool_name_from_wire,
    wire_tool_name,
)
from steward.models.protocol import ModelRequest, StreamEnd, StreamEvent, TextDelta
from steward.models.providers._http import api_key_from_env, parse_retry_after
from steward.models.tokens import estimated_usage

PROVIDER = "openai"
_DETAIL_LIMIT = 300


class _Params(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[ChatCompletionMessageParam]]
    tools: list[ChatCompletionToolUnionParam]
    max_completion_tokens: int
    temperature: float
    response_format: ResponseFormatJSONSchema


class OpenAICompatModel:
    """A Model and StreamingModel over `POST {base_url}/chat/completions`."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str,
        timeout: float = 60.0,
        name: str | None = None,
        client: AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.name = name or f"{PROVIDER}:{model}"
        self.base_url = base_url
        self.timeout = timeout
        self._owns_client = client is None
        if client is None:
            if not api_key:
                raise ModelError(f"no API key for model {self.name}", code="model.auth")
            try:
                client = AsyncOpenAI(
                    base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout
                )
            except OpenAIError as exc:
                raise ModelError(f"cannot configure {self.name}: {exc}", code="model.auth") from exc
        self._client = client
        # what a circuit breaker guards: the same model at another base_url is another endpoint
        self.endpoint = f"{self.name}@{client.base_url}"

    @classmethod
    def from_env(
        cls,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
    ) -> OpenAICompatModel:
        """Reads the key from `api_key_env` now, so a missing key fails at start-up."""
        api_key = api_key_from_env(api_key_env, model)
        return cls(model, base_url=base_url, api_key=api_key, timeout=timeout)

    async def respond(self, request: ModelRequest) -> ModelResponse:
        try:
            completion = await self._client.chat.completions.create(**self._params(request))
        except OpenAIError as exc:
            raise map_error(exc) from exc
        except ValueError as exc:  # a body that is not JSON (say, a proxy's HTML page)
            raise _bad_response(f"response body is not JSON: {exc}") from exc
        return self._from_completion(completion, request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        state = _StreamState()
        try:
            chunks = await self._client.chat.completions.create(
                **self._params(request), stream=True, stream_options={"include_usage": True}
            )
            _watch_done(chunks, state)
            async with chunks:
                async for chunk in chunks:
                    text = state.add(chunk)
                    if text:
                        yield TextDelta(text)
        except OpenAIError as exc:
            raise map_error(exc, streamed=state.started) from exc
        except ValueError as exc:  # an SSE event whose data is not JSON
            raise _bad_response(f"stream event is not JSON: {exc}") from exc
        yield StreamEnd(state.finish(self, request))

    def _params(self, request: ModelRequest) -> _Params:
        params: _Params = {"model": self.model, "messages": to_openai_messages(request.messages)}
        if request.tools:
            params["tools"] = [to_openai_tool(t) for t in request.tools]
        if request.max_output_tokens is not None:
            params["max_completion_tokens"] = request.max_output_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.output_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.output_schema, "strict": True},
            }
        return params

    async def aclose(self) -> None:
        """Closes the HTTP client, unless it was passed in (then its owner closes it)."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def usage(
        self,
        usage: CompletionUsage | None,
        request: ModelRequest,
        text: str,
        calls: tuple[ToolCall, ...],
    ) -> Usage:
        """The usage the server reported, or (it reported none) an offline estimate."""
        if usage is not None:
            return to_usage(usage)
        return estimated_usage(self.model, request.messages, request.tools, text, calls)

    def _from_completion(self, completion: ChatCompletion, request: ModelRequest) -> ModelResponse:
        if not completion.choices:
            raise _bad_response("the response has no choices")
        choice = completion.choices[0]
        message = choice.message
        calls: list[ToolCall] = []
        for i, call in enumerate(message.tool_calls or ()):
            if not isinstance(call, ChatCompletionMessageFunctionToolCall):
                raise _bad_response(f"unsupported tool call type {call.type!r}")
            name = tool_name_from_wire(call.function.name, request.tools)
            calls.append(
                ToolCall(
                    call.id or f"call_{i}", name, parse_arguments(name, call.function.arguments)
                )
            )
        text = message.content or message.refusal or ""
        return ModelResponse(
            model=self.name,
            text=text,
            tool_calls=tuple(calls),
            finish_reason=str(choice.finish_reason or "stop"),
            usage=self.usage(completion.usage, request, text, tuple(calls)),
        )


# -- requests -----------------------------------------------------------------------------


def to_openai_messages(messages: tuple[Message, ...]) -> list[ChatCompletionMessageParam]:
    """steward Messages in the Chat Completions shape (tool arguments JSON-encoded)."""
    out: list[ChatCompletionMessageParam] = []
    for m in messages:
        if m.role == "tool":
            if not m.tool_call_id:
                raise ModelError(
                    "a tool message needs the tool_call_id it answers", code="model.bad_request"
                )
            out.append({"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id})
            continue
        param: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            param["content"] = m.content or None
            param["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": wire_tool_name(c.name),
                        "arguments": json.dumps(c.arguments),
                    },
                }
                for c in m.tool_calls
            ]
        if m.name:
            param["name"] = m.name
        out.append(cast(ChatCompletionMessageParam, param))
    return out


def to_openai_tool(spec: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": wire_tool_name(spec.name),
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


# -- responses ----------------------------------------------------------------------------


def _bad_response(message: str) -> ProviderError:
    return ProviderError(
        f"{PROVIDER}: {message}", code="model.bad_response", provider=PROVIDER, retryable=False
    )


def parse_arguments(tool: str, arguments: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict; anything else is the provider's fault."""
    if not arguments or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        raise _bad_response(f"arguments of tool call {tool!r} are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _bad_response(
            f"arguments of tool call {tool!r} are a JSON {type(value).__name__}, not an object"
        )
    return value


def to_usage(usage: CompletionUsage) -> Usage:
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=cached or 0,
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """Assembles a ModelResponse from chunks; tool calls arrive in pieces, keyed by index."""

    started: bool = False
    text: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: CompletionUsage | None = None
    done: bool = False  # the [DONE] marker arrived

    def add(self, chunk: ChatCompletionChunk) -> str:
        self.started = True
        if chunk.usage is not None:
            self.usage = chunk.usage
        piece = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            piece += (delta.content or "") + (delta.refusal or "")
            for d in delta.tool_calls or ():
                call = self.calls.setdefault(d.index, _PartialCall())
                if d.id and not call.id:
                    call.id = d.id
                if d.function is not None:
                    if d.function.name and not call.name:
                        call.name = d.function.name
                    if d.function.arguments:
                        call.arguments.append(d.function.arguments)
            if choice.finish_reason:
                self.finish_reason = str(choice.finish_reason)
        if piece:
            self.text.append(piece)
        return piece

    def finish(self, model: OpenAICompatModel, request: ModelRequest) -> ModelResponse:
        if self.finish_reason is None or not self.done:
            missing = "a finish_reason" if self.finish_reason is None else "[DONE]"
            raise ProviderError(
                f"{PROVIDER}: the stream ended before {missing} (truncated)",
                code="model.truncated",
                provider=PROVIDER,
                retryable=True,
            )
        calls = tuple(
            ToolCall(
                c.id or f"call_{index}",
                tool_name_from_wire(c.name, request.tools),
                parse_arguments(c.name, "".join(c.arguments)),
            )
            for index, c in sorted(self.calls.items())
        )
        text = "".join(self.text)
        return ModelResponse(
            model=model.name,
            text=text,
            tool_calls=calls,
            finish_reason=self.finish_reason,
            usage=model.usage(self.usage, request, text, calls),
        )


def _watch_done(chunks: AsyncStream[ChatCompletionChunk], state: _StreamState) -> None:
    """Notes the `[DONE]` marker, which the SDK consumes without a sign: a stream that
    ends without it was cut off, though the SDK yields the same chunks either way. (The
    SDK reads its events through `_iter_events` lazily, at the first chunk.)"""
    events = chunks._iter_events

    async def watched() -> AsyncIterator[ServerSentEvent]:
        async for sse in events():
            if sse.data.startswith("[DONE]"):
                state.done = True
            yield sse

    chunks._iter_events = watched  # type: ignore[method-assign]


# -- errors -------------------------------------------------------------------------------


def map_error(exc: OpenAIError, *, streamed: bool = False) -> ProviderError:
    """Maps any SDK exception to a ProviderError. `streamed`: chunks had already arrived."""

    def err(
        code: str,
        retryable: bool,
        what: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ProviderError:
        return ProviderError(
            f"{PROVIDER}: {what}: {_detail(exc)}",
            code=code,
            provider=PROVIDER,
            retryable=retryable,
            retry_after=retry_after,
            status=status,
        )

    if isinstance(exc, APITimeoutError):
        return err("model.timeout", True, "request timed out")
    if isinstance(exc, APIConnectionError):
        if streamed:
            return err("model.truncated", True, "connection lost mid-stream")
        return err("model.unavailable", True, "connection failed")
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        after = parse_retry_after(exc.response.headers)
        if status == 429:
            if exc.code == "insufficient_quota":  # a billing limit: waiting will not help
                return err("model.rate_limited", False, "quota exhausted", status)
            return err("model.rate_limited", True, "rate limited", status, after)
        if status in (401, 403):
            return err("model.auth", False, f"HTTP {status} (check the API key)", status)
        if status == 408:
            return err("model.timeout", True, "HTTP 408", status, after)
        if status >= 500:
            return err("model.unavailable", True, f"HTTP {status}", status, after)
        return err("model.bad_request", False, f"HTTP {status}", status)
    if isinstance(exc, APIResponseValidationError):
        return err("model.bad_response", False, "response does not match the API schema")
    if isinstance(exc, APIError):  # an error event inside a stream
        if "rate_limit" in f"{exc.code} {exc.type}":
            return err("model.rate_limited", True, "rate limited mid-stream")
        return err("model.unavailable", True, "error event mid-stream")
    return err("model.bad_response", False, type(exc).__name__)


def _detail(exc: OpenAIError) -> str:
    text = str(exc)
    if isinstance(exc, APIError):
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        text = message if isinstance(message, str) and message else exc.message
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "..."
