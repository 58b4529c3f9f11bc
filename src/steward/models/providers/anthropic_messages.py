"""Anthropic's Messages API through the official SDK (`anthropic.AsyncAnthropic`).

System messages become `system`; assistant tool calls become `tool_use` blocks; tool
results become `tool_result` blocks in a user turn (consecutive turns of one role are
merged, as the API requires alternation). Structured output is a forced `answer` tool
whose input is the answer. The SDK's own retries are off (max_retries=0): retry policy
belongs to steward, and every SDK or transport failure leaves as a ProviderError with a
stable code. Error messages name statuses, error types and tools, never payloads.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic, omit
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextBlock,
    ToolUseBlock,
)
from anthropic.types import TextDelta as WireTextDelta

from steward.core.errors import ProviderError
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

PROVIDER = "anthropic"
ANSWER_TOOL = "answer"  # the forced tool that carries a structured answer
# stop reasons in the OpenAI vocabulary steward uses (core.messages.CUT_OFF names the cut-offs)
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
           "max_tokens": "length", "model_context_window_exceeded": "length",
           "refusal": "content_filter"}  # fmt: skip
# failures the SDK call or its stream may raise: SDK errors, raw transport errors while a
# stream is read (the SDK does not wrap those), and undecodable bodies
_FAILURES = (anthropic.AnthropicError, httpx2.HTTPError, ValueError)
# error types an `error` event inside a 200 stream may carry
_EVENT_CODES = {
    "rate_limit_error": ("model.rate_limited", True),
    "authentication_error": ("model.auth", False),
    "permission_error": ("model.auth", False),
    "invalid_request_error": ("model.bad_request", False),
    "request_too_large": ("model.bad_request", False),
    "timeout_error": ("model.timeout", True),
}


def _error(message: str, code: str, *, retryable: bool, **extra: Any) -> ProviderError:
    return ProviderError(
        f"anthropic: {message}", code=code, provider=PROVIDER, retryable=retryable, **extra
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """How a structured answer travels: the `answer` tool's input, maybe wrapped."""

    wrapped: bool  # a non-object schema travels as {"answer": value}


class AnthropicModel:
    """A Model and StreamingModel over the Anthropic Messages API."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str,
        timeout: float = 60.0,
        name: str | None = None,
        client: AsyncAnthropic | None = None,
        default_max_tokens: int = 4096,
    ) -> None:
        self.model = model
        self.name = name or f"anthropic:{model}"
        self.default_max_tokens = default_max_tokens
        self._owns_client = client is None
        self._client = client or AsyncAnthropic(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout
        )
        # what a circuit breaker guards: the same model at another base_url is another endpoint
        self.endpoint = f"{self.name}@{self._client.base_url}"

    @classmethod
    def from_env(
        cls,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        timeout: float = 60.0,
    ) -> AnthropicModel:
        key = api_key_from_env(api_key_env, model)
        return cls(model, base_url=base_url, api_key=key, timeout=timeout)

    async def aclose(self) -> None:
        """Close the HTTP client, if this model created it."""
        if self._owns_client:
            await self._client.close()

    async def respond(self, request: ModelRequest) -> ModelResponse:
        params, shape = self._params(request)
        try:
            message = await self._client.messages.create(**params, stream=False)
        except _FAILURES as exc:
            raise _mapped(exc, streaming=False) from exc
        texts = [b.text for b in message.content if isinstance(b, TextBlock)]
        calls = [
            ToolCall(b.id, b.name, dict(b.input))
            for b in message.content
            if isinstance(b, ToolUseBlock)
        ]
        u = message.usage
        usage = _usage(
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens,
            u.cache_creation_input_tokens,
        )
        return self._response(texts, calls, message.stop_reason, usage, shape, request.tools)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        params, shape = self._params(request)
        try:
            events = await self._client.messages.create(**params, stream=True)
        except _FAILURES as exc:
            raise _mapped(exc, streaming=False) from exc
        state = _StreamState()
        try:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
                except _FAILURES as exc:
                    raise _mapped(exc, streaming=True) from exc
                piece = state.feed(event)
                if piece:
                    yield TextDelta(piece)
        finally:
            with contextlib.suppress(*_FAILURES):
                await events.close()
        if not state.stopped:
            raise _error("the stream ended before message_stop", "model.truncated", retryable=True)
        usage = _usage(state.input_tokens, state.output_tokens, state.cache_read, state.cache_write)
        yield StreamEnd(
            self._response(state.texts, state.calls, state.stop_reason, usage, shape, request.tools)
        )

    # -- request --------------------------------------------------------------------------

    def _params(self, request: ModelRequest) -> tuple[dict[str, Any], _Shape | None]:
        system, messages = _messages(request.messages)
        tools: list[dict[str, Any]] = [
            {
                "name": wire_tool_name(t.name),
                "description": t.description,
                "input_schema": t.parameters,
            }
            for t in request.tools
        ]
        tool_choice: dict[str, Any] | None = None
        shape: _Shape | None = None
        if request.output_schema is not None:
            if any(t.name == ANSWER_TOOL for t in request.tools):
                raise _error(
                    f"a tool named {ANSWER_TOOL!r} clashes with structured output",
                    "model.bad_request",
                    retryable=False,
                )
            schema = request.output_schema
            shape = _Shape(wrapped=schema.get("type") != "object")
            if shape.wrapped:
                schema = {
                    "type": "object",
                    "properties": {"answer": schema},
                    "required": ["answer"],
                }
            tools.append(
                {
                    "name": ANSWER_TOOL,
                    "input_schema": schema,
                    "description": "Give the final answer as this tool's input.",
                }
            )
            # with other tools on offer the model may still call them; it must call one
            tool_choice = (
                {"type": "any"} if request.tools else {"type": "tool", "name": ANSWER_TOOL}
            )
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_output_tokens or self.default_max_tokens,
            "messages": messages,
            "system": system if system is not None else omit,
            "tools": tools or omit,
            "tool_choice": tool_choice if tool_choice is not None else omit,
        }
        if request.temperature is not None:
            # this SDK release has no `temperature` keyword; the API still takes the field
            params["extra_body"] = {"temperature": request.temperature}
        return params, shape

    # -- response -------------------------------------------------------------------------

    def _response(
        self,
        texts: Sequence[str],
        calls: Sequence[ToolCall],
        stop_reason: str | None,
        usage: Usage,
        shape: _Shape | None,
        tools: tuple[ToolSpec, ...] = (),
    ) -> ModelResponse:
        text = "".join(texts)
        calls = [ToolCall(c.id, tool_name_from_wire(c.name, tools), c.arguments) for c in calls]
        finish = _FINISH.get(stop_reason or "end_turn", stop_reason or "stop")
        if shape is not None:
            answers = [c for c in calls if c.name == ANSWER_TOOL]
            calls = [c for c in calls if c.name != ANSWER_TOOL]
            if answers:
                value: Any = answers[0].arguments
                if shape.wrapped:
                    if "answer" not in value:
                        raise _error(
                            f"the {ANSWER_TOOL!r} tool input lacks its 'answer' field",
                            "model.bad_response",
                            retryable=True,
                        )
                    value = value["answer"]
                text = json.dumps(value, ensure_ascii=False)
                if not calls and finish == "tool_calls":  # the answer tool is the answer
                    finish = "stop"
        return ModelResponse(
            model=self.name, text=text, tool_calls=tuple(calls), finish_reason=finish, usage=usage
        )


def _messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """Steward messages → (system, alternating Messages API turns)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        blocks: list[dict[str, Any]] = []
        if m.role == "system":
            system.append(m.content)
            continue
        if m.role == "tool":
            if not m.tool_call_id:
                raise _error(
                    "a tool result has no tool_call_id", "model.bad_request", retryable=False
                )
            role = "user"
            blocks.append(
                {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            )
        else:
            role = "assistant" if m.role == "assistant" else "user"
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": c.id,
                    "name": wire_tool_name(c.name),
                    "input": c.arguments,
                }
                for c in m.tool_calls
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return ("\n\n".join(system) if system else None), turns


def _usage(fresh: int | None, output: int | None, read: int | None, write: int | None) -> Usage:
    """Anthropic counts cache reads and writes apart from `input_tokens`; steward's Usage
    counts cached tokens as part of the input (see pricing.Rate.cost), so they are added."""
    read, write = read or 0, write or 0
    return Usage(
        input_tokens=(fresh or 0) + read + write,
        output_tokens=output or 0,
        cached_input_tokens=read,
        cache_write_tokens=write,
    )


@dataclass
class _ToolBlock:
    id: str
    name: str
    seed: dict[str, Any]
    parts: list[str] = field(default_factory=list)

    def finish(self) -> ToolCall:
        raw = "".join(self.parts)
        if not raw.strip():
            return ToolCall(self.id, self.name, self.seed)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _error(
                f"the input streamed for tool {self.name!r} is not valid JSON "
                f"({exc.msg} at char {exc.pos})",
                "model.bad_response",
                retryable=True,
            ) from None
        if not isinstance(value, dict):
            raise _error(
                f"the input streamed for tool {self.name!r} is not a JSON object",
                "model.bad_response",
                retryable=True,
            )
        return ToolCall(self.id, self.name, value)


@dataclass
class _StreamState:
    """Assembles a streamed message from its events."""

    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    open_tools: dict[int, _ToolBlock] = field(default_factory=dict)
    stop_reason: str | None = None
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    cache_read: int | None = 0
    cache_write: int | None = 0
    stopped: bool = False

    def feed(self, event: RawMessageStreamEvent) -> str:
        """Take one event; return the text it adds, if any."""
        if isinstance(event, RawMessageStartEvent):
            u = event.message.usage
            self.input_tokens, self.output_tokens = u.input_tokens, u.output_tokens
            self.cache_read, self.cache_write = (
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
            )
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, ToolUseBlock):
                self.open_tools[event.index] = _ToolBlock(block.id, block.name, dict(block.input))
            elif isinstance(block, TextBlock) and block.text:
                self.texts.append(block.text)
                return block.text
        elif isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if isinstance(delta, WireTextDelta):
                self.texts.append(delta.text)
                return delta.text
            if isinstance(delta, InputJSONDelta):
                tool = self.open_tools.get(event.index)
                if tool is None:
                    raise _error(
                        f"input_json_delta for block {event.index}, which is no tool_use",
                        "model.bad_response",
                        retryable=True,
                    )
                tool.parts.append(delta.partial_json)
        elif isinstance(event, RawContentBlockStopEvent):
            tool = self.open_tools.pop(event.index, None)
            if tool is not None:
                self.calls.append(tool.finish())
        elif isinstance(event, RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            du = event.usage
            self.output_tokens = du.output_tokens
            if du.input_tokens is not None:
                self.input_tokens = du.input_tokens
            if du.cache_read_input_tokens is not None:
                self.cache_read = du.cache_read_input_tokens
            if du.cache_creation_input_tokens is not None:
                self.cache_write = du.cache_creation_input_tokens
        elif isinstance(event, RawMessageStopEvent):
            self.stopped = True
        return ""


def _mapped(exc: BaseException, *, streaming: bool) -> ProviderError:
    """Any SDK or transport failure → a ProviderError with a stable code."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return _error("the request timed out", "model.timeout", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return _error("could not connect to the API", "model.unavailable", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, httpx2.HTTPError):
        if streaming:
            return _error(
                f"the stream broke off ({type(exc).__name__})", "model.truncated", retryable=True
            )
        return _error(
            f"transport failure ({type(exc).__name__})", "model.unavailable", retryable=True
        )
    if isinstance(exc, anthropic.CredentialsError):
        return _error("no usable credentials", "model.auth", retryable=False)
    return _error(
        f"unexpected response ({type(exc).__name__})", "model.bad_response", retryable=True
    )


def _status_error(exc: anthropic.APIStatusError) -> ProviderError:
    status = exc.status_code
    kind = str(exc.type or "")
    detail = f": {exc.api_message}" if exc.api_message else ""
    if status < 400:  # an `error` event inside an otherwise successful stream
        code, retryable = _EVENT_CODES.get(kind, ("model.unavailable", True))
        return _error(
            f"error event in stream ({kind or 'unknown'}){detail}", code, retryable=retryable
        )
    described = f"HTTP {status}" + (f" {kind}" if kind else "") + detail
    if status == 429:
        retry_after = parse_retry_after(exc.response.headers)
        return _error(
            described, "model.rate_limited", retryable=True, retry_after=retry_after, status=status
        )
    if status >= 500:  # 500, 502, 503, 504, 529 (overloaded_error)
        return _error(described, "model.unavailable", retryable=True, status=status)
    if status in (401, 403):
        return _error(described, "model.auth", retryable=False, status=status)
    if status == 408:
        return _error(described, "model.timeout", retryable=True, status=status)
    return _error(described, "model.bad_request", retryable=False, status=status)
