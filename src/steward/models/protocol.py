"""The Model protocol. Providers (OpenAI-compatible, Anthropic, local) implement the same
call: messages and tool specs in, one ModelResponse out (text or tool calls, usage,
finish reason, confidence). Streaming providers also implement `stream()`, which yields
text deltas and ends with the complete response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

import msgspec

from steward.core.messages import Message, ModelResponse, ToolSpec


class ModelRequest(msgspec.Struct, frozen=True):
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    role: str = "reason"  # which tier of model this step needs (classify, reason, ...)
    settings: dict[str, Any] = {}
    max_output_tokens: int | None = None
    temperature: float | None = None
    # JSON Schema the final answer must follow (structured output), when set
    output_schema: dict[str, Any] | None = None


class TextDelta(msgspec.Struct, frozen=True):
    """A piece of the answer's text, as the provider streams it."""

    text: str


class StreamEnd(msgspec.Struct, frozen=True):
    """The last item of a stream: the whole response, tool calls and usage included."""

    response: ModelResponse


StreamEvent = TextDelta | StreamEnd


@runtime_checkable
class Model(Protocol):
    name: str

    async def respond(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class StreamingModel(Model, Protocol):
    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...
