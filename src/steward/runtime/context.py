"""Fit a request into the model's context window by the spec's strategy: trim the oldest
tool results first, or refuse. Either way the request never silently overflows."""

from __future__ import annotations

import msgspec

from steward.core.errors import ModelError
from steward.core.messages import Message
from steward.models.protocol import ModelRequest
from steward.models.tokens import count_messages

TRIMMED = '{"ok": true, "result": "[trimmed: this older tool result was removed to fit the context window]"}'


def fit_context(
    request: ModelRequest, model: str, window: int | None, strategy: str
) -> ModelRequest:
    if window is None:
        return request
    budget = window - (request.max_output_tokens or 0)
    used = count_messages(model, request.messages, request.tools)
    if used <= budget:
        return request
    if strategy == "refuse":
        raise ModelError(f"the request needs {used} tokens; {model} allows {budget} with room for the answer",
                         code="model.context_exceeded")  # fmt: skip
    messages = list(request.messages)
    for index, message in enumerate(messages):
        if used <= budget:
            break
        if message.role == "tool" and message.content != TRIMMED:
            messages[index] = Message(
                "tool", TRIMMED, tool_call_id=message.tool_call_id, name=message.name
            )
            used = count_messages(model, tuple(messages), request.tools)
    if used > budget:
        raise ModelError(f"the request needs {used} tokens even with old tool results trimmed; "
                         f"{model} allows {budget}", code="model.context_exceeded")  # fmt: skip
    return msgspec.structs.replace(request, messages=tuple(messages))
