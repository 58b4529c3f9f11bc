"""ScriptedModel: plays back a fixed list of responses, one per model call, and records
the requests it saw. For tests and for users' own tests: no network, no weights."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from steward.core.errors import ModelError
from steward.core.messages import ModelResponse, ToolCall, Usage
from steward.models.protocol import ModelRequest, StreamEnd, StreamEvent, TextDelta


def final(text: str, confidence: float = 0.95, usage: Usage | None = None) -> ModelResponse:
    return ModelResponse("scripted", text=text, confidence=confidence, usage=usage or Usage())


def calls(*specs: tuple[str, dict[str, Any]], usage: Usage | None = None) -> ModelResponse:
    """A turn of tool calls: calls(("lookup", {"id": 1}), ("search", {"q": "x"}))."""
    tool_calls = tuple(ToolCall(f"call_{i}", name, args) for i, (name, args) in enumerate(specs))
    return ModelResponse(
        "scripted", tool_calls=tool_calls, finish_reason="tool_calls", usage=usage or Usage()
    )


class ScriptedModel:
    def __init__(
        self, responses: Iterable[ModelResponse], *, delay: float = 0.0, name: str = "scripted"
    ) -> None:
        self.name = name
        self.responses = list(responses)
        self.delay = delay
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """The same response, its text in word-sized deltas, then the whole response."""
        response = await self.respond(request)
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            yield TextDelta(piece)
        yield StreamEnd(response)

    async def respond(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if turn >= len(self.responses):
            raise ModelError(f"scripted model has no response for turn {turn}")
        response = self.responses[turn]
        if response.model == "scripted":  # the helpers' placeholder: served by this model
            response = msgspec.structs.replace(response, model=self.name)
        return response
