"""A scripted OpenAI Agents SDK model for tests and examples: no network, no key.

`FakeModel(turns)` answers call number n with `turns[n]`, where n is the number of tool calls
already in the conversation it is shown, so a fresh instance (after a restart) continues
where the run was. When the script is exhausted it answers with text that quotes the
last tool output it was shown, so a test can see what the model saw (a denial's reason, a
refund's result). Each call reports `usage` tokens, for steward to price.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, ModelResponse, ModelSettings, ModelTracing, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.testing import assistant_message, function_call
from agents.tool import Tool
from openai.types.responses.response_prompt_param import ResponsePromptParam

__all__ = ["FakeModel", "call"]


def call(name: str, arguments: dict[str, Any], call_id: str) -> TResponseOutputItem:
    """A function-tool call the model proposes."""
    return function_call(name, arguments, call_id=call_id)


class FakeModel(Model):
    """Scripted turns; each turn is the list of output items (tool calls) of one response."""

    def __init__(
        self, turns: list[list[TResponseOutputItem]], *, usage: tuple[int, int] = (200, 50)
    ) -> None:
        self.turns = turns
        self.usage = usage
        self.calls = 0
        self.seen: list[str] = []  # every tool output shown to the model, last call

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        self.calls += 1
        items = [dict(i) for i in input] if isinstance(input, list) else []
        done = sum(1 for i in items if i.get("type") == "function_call")
        self.seen = [
            _text(i.get("output")) for i in items if i.get("type") == "function_call_output"
        ]
        if done < len(self.turns):
            output = list(self.turns[done])
        else:
            last = self.seen[-1] if self.seen else "nothing"
            output = [assistant_message(f"Finished. Last tool output: {last}")]
        tokens_in, tokens_out = self.usage
        usage = Usage(
            requests=1,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            total_tokens=tokens_in + tokens_out,
        )
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("FakeModel does not stream; use Runner.run")


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return json.dumps(output, default=str)
