"""The Model protocol. Providers (OpenAI-compatible, Anthropic, local) implement the same
call: messages and tool specs in, one ModelResponse out (text or tool calls, usage,
finish reason, confidence). Streaming providers add `stream()` in a later layer; the
runner only needs `respond()`."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from steward.core.messages import Message, ModelResponse, ToolSpec


class ModelRequest(msgspec.Struct, frozen=True):
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    role: str = "reason"  # which tier of model this step needs (classify, reason, ...)
    settings: dict[str, Any] = {}


@runtime_checkable
class Model(Protocol):
    name: str

    async def respond(self, request: ModelRequest) -> ModelResponse: ...
