"""Govern a LangChain 1.x agent (`langchain.agents.create_agent`, which runs on LangGraph)
with steward, as one middleware:

    run = await st.start_run("refund-agent", text, tools=declare_tools(tools))
    agent = create_agent(model, tools, middleware=[StewardMiddleware(run)], checkpointer=saver)

The middleware is the same gate as `steward.adapters.langgraph` (its tool interceptor, its
governed chat model): every tool call crosses steward's gate first, a review is
LangGraph's `interrupt()` (answer it with `resume_command`), and every model call is
reserved, priced and recorded. Async only (`ainvoke`/`astream`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

import steward
from steward.adapters.langgraph import (
    StewardLangGraphError,
    _ToolGate,
    govern_model,
)

__all__ = ["StewardMiddleware"]


class StewardMiddleware(AgentMiddleware):
    """Every tool call and model call of a `create_agent` agent, governed for `run`.

    `model_id` names the model for pricing (`provider:model`) when it cannot be read
    from the model; `max_output_tokens` is what a call reserves before it is made."""

    def __init__(
        self,
        run: steward.Run,
        *,
        model_id: str | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        super().__init__()
        self.run = run
        self.model_id = model_id
        self.max_output_tokens = max_output_tokens
        self._gate = _ToolGate(run)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        return await self._gate(request, handler)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        return self._gate.refuse_sync(request, handler)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        model = govern_model(
            self.run,
            request.model,
            model_id=self.model_id,
            max_output_tokens=self.max_output_tokens,
        )
        return await handler(request.override(model=model))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        raise StewardLangGraphError(
            "steward governs LangChain agents on the async path only: run the agent with "
            "ainvoke/astream (the model was not called)"
        )
