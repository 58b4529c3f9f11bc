"""Messages, tool calls and model responses: the vocabulary between runner, models and gate."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec


class Source(StrEnum):
    """Where a value came from (DESIGN principle 10). Untrusted sources are data, never orders."""

    USER = "user"
    CONFIG = "config"
    MODEL = "model"
    TOOL = "tool"
    HUMAN = "human"


class ToolCall(msgspec.Struct, frozen=True):
    """A call the model proposes. `id` is unique within the run's turn."""

    id: str
    name: str
    arguments: dict[str, Any]


class Usage(msgspec.Struct, frozen=True):
    """Tokens of one model call. `input_tokens` includes cached reads and cache writes.
    `estimated`: the provider reported none, so they were counted locally."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    cache_write_tokens: int = 0
    estimated: bool = False


class Message(msgspec.Struct, frozen=True):
    """One chat message. Tool results carry the call id they answer."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(msgspec.Struct, frozen=True):
    """What a model is told about a tool: name, description and JSON Schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


def wire_tool_name(name: str) -> str:
    """A tool's name as the providers' APIs accept it (letters, digits, `_`, `-`): an MCP
    tool's `server.tool` is sent as `server__tool`."""
    return name.replace(".", "__")


def tool_name_from_wire(wire: str, tools: tuple[ToolSpec, ...]) -> str:
    """The name of the tool among `tools` that the provider called `wire`; `wire` itself
    when none is (the gate then decides an unknown tool)."""
    if "__" in wire:
        for spec in tools:
            if "." in spec.name and wire_tool_name(spec.name) == wire:
                return spec.name
    return wire


class ModelResponse(msgspec.Struct, frozen=True):
    """A model's turn: either tool calls to make, or a final answer with a confidence."""

    model: str
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    confidence: float | None = None
    finish_reason: str = "stop"
    usage: Usage = Usage()

    @property
    def cut_off(self) -> bool:
        """Stopped by the output limit ("length") or a content filter: never an answer,
        and its tool calls (perhaps cut mid-way) are never made."""
        return self.finish_reason in CUT_OFF

    @property
    def is_final(self) -> bool:
        return not self.tool_calls and not self.cut_off


# the finish reasons that end a response before the model meant it to end
CUT_OFF = frozenset({"length", "content_filter"})
