"""Counting tokens offline with the OpenAI BPE encodings (bpe-openai ships them; nothing is
downloaded). o200k_base for the GPT-4o, GPT-4.1 and o-series families, cl100k_base for
the rest. Anthropic does not publish its tokenizer: for Claude models the count is an
estimate, which is why windows are checked with the request's output budget on top."""

from __future__ import annotations

import functools
from typing import Any

import bpe_openai
import msgspec

from steward.core.messages import Message, ToolCall, ToolSpec, Usage

_PER_MESSAGE = 4  # role and separators, as OpenAI documents for chat formats


@functools.cache
def _encoding(name: str) -> Any:
    return bpe_openai.get_encoding(name)


def encoding_name(model: str) -> str:
    name = model.split(":", 1)[-1]
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


def count_text(model: str, text: str) -> int:
    return len(_encoding(encoding_name(model)).encode(text))


def count_messages(
    model: str, messages: tuple[Message, ...], tools: tuple[ToolSpec, ...] = ()
) -> int:
    encoding = _encoding(encoding_name(model))
    total = 3  # every reply is primed with its role
    for message in messages:
        total += _PER_MESSAGE + len(encoding.encode(message.content))
        for call in message.tool_calls:
            total += len(encoding.encode(call.name)) + len(
                encoding.encode(msgspec.json.encode(call.arguments).decode())
            )
    for spec in tools:
        total += len(encoding.encode(msgspec.json.encode(spec).decode()))
    return total


def estimated_usage(
    model: str,
    messages: tuple[Message, ...],
    tools: tuple[ToolSpec, ...],
    text: str,
    calls: tuple[ToolCall, ...] = (),
) -> Usage:
    """The usage of a call whose provider reported none, counted here and marked so."""
    output = count_messages(model, (Message("assistant", text, calls),)) - 3 - _PER_MESSAGE
    return Usage(
        input_tokens=count_messages(model, messages, tools),
        output_tokens=max(output, 0),
        estimated=True,
    )
