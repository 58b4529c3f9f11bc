"""Govern a LangGraph agent with steward: its whole toolset and its chat model.

    run, model, tools = await start(st, "refund-agent", text, model, tools)
    agent = create_react_agent(model, tools, checkpointer=saver)   # or your own StateGraph
    ...
    await run.finish(answer)

(`start` is `st.start_run(..., tools=declare_tools(tools))` then `govern(run, model, tools)`;
tools are a list of BaseTools / functions, or a ToolNode.)

* **Tools.** `govern_tools` returns a `ToolNode` over the same tools (MCP tools from
  langchain-mcp-adapters are BaseTools too) whose tool-call interceptor sends every call
  to steward's gate first, keyed by the model's own tool-call id. Allowed: LangGraph runs
  the tool as usual and the result is recorded; a replay of the same call id (a resumed
  node, a restarted program) gets the recorded result back and never runs the tool again.
  Denied: the model gets an error `ToolMessage` that names steward's reasons. Review:
  LangGraph's own `interrupt()`; the checkpointer persists the pause; the program resumes
  with `Command(resume=...)` (see `resume_command`), and steward's journal, not the resume
  value, says whether the person approved (with possibly edited arguments) or rejected.
* **Model.** `govern_model` wraps a `BaseChatModel`: each generation is reserved against
  the run's budget before the call and settled with the reported usage after it
  (`run.model_call`), so it is priced, budgeted, traced and counted.

Steward's facade is async: run the graph with `ainvoke`/`astream`. The sync entry points
fail closed (they raise; they never run a tool or a model ungoverned).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, Interrupt, StateSnapshot, interrupt
from pydantic import ConfigDict, Field

import steward

__all__ = [
    "ApprovalRequest",
    "Governed",
    "GovernedChatModel",
    "GovernedRun",
    "StewardLangGraphError",
    "approvals",
    "attach",
    "declare_tools",
    "govern",
    "govern_model",
    "govern_tools",
    "resume_command",
    "start",
]

KILLED = "agent.disabled"

#: Marks the interrupts this adapter raises, so `approvals` tells them from others.
INTERRUPT_KIND = "steward.approval"

ToolResponse = ToolMessage | Command  # type: ignore[type-arg]
AsyncExecute = Callable[[ToolCallRequest], Awaitable[ToolResponse]]
AsyncWrapper = Callable[[ToolCallRequest, AsyncExecute], Awaitable[ToolResponse]]


class StewardLangGraphError(steward.StewardError):
    """The graph was driven in a way steward cannot govern (a sync entry point, a tool
    call without an id, a chat model whose bound tools cannot be governed)."""


# -- tools ---------------------------------------------------------------------------------


def declare_tools(
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode,
    *,
    effects: Mapping[str, str] | None = None,
    idempotent: Collection[str] = (),
) -> list[steward.Tool]:
    """steward's declarations of a LangGraph toolset (name, description, JSON Schema of the
    arguments the model gives), decide-only: LangGraph runs them, steward governs them.
    `effects` maps a tool's name to its effect ("read", "write", ...); a tool not named
    there gets steward's safe default, "write". `idempotent` names tools that may run
    again with the same arguments."""
    effects = dict(effects or {})
    found = list(tools.tools_by_name.values()) if isinstance(tools, ToolNode) else list(tools)
    declared: list[steward.Tool] = []
    for item in found:
        schema = convert_to_openai_tool(item)["function"]
        declared.append(
            steward.external_tool(
                schema["name"],
                None,
                parameters=dict(schema.get("parameters") or {"type": "object", "properties": {}}),
                description=str(schema.get("description", "")),
                effect=effects.get(schema["name"], "write"),
                idempotent=schema["name"] in idempotent,
            )
        )
    return declared


def govern_tools(
    run: steward.Run, tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode
) -> ToolNode:
    """A `ToolNode` whose every tool call crosses steward's gate for `run`.

    `tools` is the agent's toolset: a list of tools (BaseTools, MCP tools, plain functions)
    or an existing `ToolNode` (its tools, error handling, messages key and any interceptor
    of its own are kept; its interceptor runs around the governed call, so a retry in it
    gets the recorded result, never a second execution)."""
    gate = _ToolGate(run)
    if isinstance(tools, ToolNode):
        own_async = cast("AsyncWrapper | None", getattr(tools, "_awrap_tool_call", None))
        own_sync = getattr(tools, "_wrap_tool_call", None)
        if own_async is None and own_sync is not None:
            raise StewardLangGraphError(
                "this ToolNode has only a sync wrap_tool_call; give it an awrap_tool_call "
                "(steward governs async graphs)"
            )
        return ToolNode(
            list(tools.tools_by_name.values()),
            name=tools.name or "tools",
            tags=list(tools.tags or []),
            handle_tool_errors=getattr(tools, "_handle_tool_errors", True),
            messages_key=getattr(tools, "_messages_key", "messages"),
            wrap_tool_call=gate.refuse_sync,
            awrap_tool_call=gate.around(own_async),
        )
    return ToolNode(list(tools), wrap_tool_call=gate.refuse_sync, awrap_tool_call=gate)


class _ToolGate:
    """The tool-call interceptor: one instance per governed toolset."""

    def __init__(self, run: steward.Run) -> None:
        self.run = run

    def around(self, own: AsyncWrapper | None) -> AsyncWrapper:
        if own is None:
            return self.__call__

        async def wrapped(request: ToolCallRequest, execute: AsyncExecute) -> ToolResponse:
            async def governed(req: ToolCallRequest) -> ToolResponse:
                return await self(req, execute)

            return await own(request, governed)

        return wrapped

    def refuse_sync(self, request: ToolCallRequest, execute: Callable[..., Any]) -> ToolResponse:
        raise StewardLangGraphError(
            "steward governs LangGraph tools on the async path only: run the graph with "
            f"ainvoke/astream (tool {request.tool_call['name']!r} was not run)"
        )

    async def __call__(self, request: ToolCallRequest, execute: AsyncExecute) -> ToolResponse:
        call = request.tool_call
        name, call_id = call["name"], call.get("id")
        if not call_id:
            return _error_message(call, "steward denied this call: the tool call has no id")
        arguments = dict(call["args"])
        verdict = await self.run.decide(name, arguments, call_id=call_id)
        while isinstance(verdict, steward.Waiting):
            # Pauses the graph (the checkpointer keeps the pause). When the graph is
            # resumed, this node runs again from its start: `decide` above is idempotent
            # by call id, and `interrupt` returns the resume value instead of pausing.
            # Whatever that value says, steward's record of the decision is what counts.
            interrupt(_payload(self.run, verdict, arguments))
            verdict = await self.run.resume(call_id, execute=False)
        if isinstance(verdict, steward.Executed):
            # Already ran (a replay): the recorded result, never a second execution.
            return _recorded_message(call, verdict.result)
        if isinstance(verdict, steward.Denied):
            if verdict.code == KILLED:
                # The kill switch stops the graph, not just this call (with ToolNode's
                # default error handling; handle_tool_errors=True would hand it to the model).
                raise steward.AgentDisabled(_denial_text(verdict), code=KILLED)
            return _error_message(call, _denial_text(verdict))
        if isinstance(verdict, steward.Failed):
            if verdict.unknown:
                return _error_message(
                    call,
                    f"steward: whether {name} took effect is unknown ({verdict.error}); "
                    "it is not run again, a person reconciles it",
                )
            return _error_message(call, f"steward: {name} failed: {verdict.error}")
        if not isinstance(verdict, steward.Allowed):  # fail closed on anything unforeseen
            return _error_message(call, f"steward denied this call: unexpected verdict {verdict!r}")
        edited = dict(verdict.arguments) != arguments
        if edited:
            request = request.override(tool_call={**call, "args": dict(verdict.arguments)})
        try:
            response = await execute(request)
        except GraphBubbleUp:
            # An interrupt() of the tool's own: nothing to record yet. On resume, steward
            # answers a write's replay as outcome unknown (never run twice): a tool that
            # pauses by itself must be an idempotent/keyed one (see the README's limits).
            raise
        except asyncio.CancelledError:
            # Stopped mid-way, as in a crash: nothing is recorded. A replay of the call id
            # is then allowed again for a read (or idempotent) tool, and answered "outcome
            # unknown" for a write, which steward never runs twice.
            raise
        except Exception as exc:
            await self.run.record_result(call_id, error=exc)
            raise
        content, error = _result_of(response)
        if error:
            await self.run.record_result(call_id, error=_text(content))
        else:
            await self.run.record_result(call_id, content)
        if edited and isinstance(response, ToolMessage):
            note = f"(a reviewer changed the arguments to {_json(verdict.arguments)}) "
            response = response.model_copy(update={"content": note + _text(response.content)})
        return response


def _payload(
    run: steward.Run, waiting: steward.Waiting, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "kind": INTERRUPT_KIND,
        "run_id": run.id,
        "approval_id": waiting.approval_id,
        "call_id": waiting.call_id,
        "tool": waiting.tool,
        "arguments": dict(arguments),
        "reason": _text(waiting.reason),
    }


def _denial_text(denied: steward.Denied) -> str:
    codes = ", ".join(_text(getattr(r, "code", r)) for r in denied.reasons)
    message = denied.message or "denied by policy"
    return f"steward denied this call: {message}" + (f" [{codes}]" if codes else "")


def _error_message(call: Mapping[str, Any], content: str) -> ToolMessage:
    return ToolMessage(
        content=content, name=call["name"], tool_call_id=call.get("id") or "", status="error"
    )


def _recorded_message(call: Mapping[str, Any], result: Any) -> ToolMessage:
    content = result if isinstance(result, str | list) else _json(result)
    return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"])


def _result_of(response: Any) -> tuple[Any, bool]:
    """What to record for a tool's response: its content, and whether it is an error."""
    if isinstance(response, ToolMessage):
        return response.content, response.status == "error"
    if isinstance(response, Command):
        # A tool that returned a Command (a state update): record its messages' content.
        update = response.update if isinstance(response.update, Mapping) else {}
        messages = update.get("messages", []) if isinstance(update, Mapping) else []
        contents = [m.content for m in messages if isinstance(m, ToolMessage)]
        return (contents[0] if len(contents) == 1 else contents), False
    return _text(response), False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


# -- approvals: what the program sees, and how it resumes ------------------------------------


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A pause of the graph: a tool call waiting for a person's decision in steward."""

    interrupt_id: str
    run_id: str
    approval_id: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str


def approvals(
    source: Mapping[str, Any] | StateSnapshot | Sequence[Interrupt],
) -> list[ApprovalRequest]:
    """The steward approvals a graph is paused on.

    `source` is what `ainvoke` returned (its `"__interrupt__"`), the graph's state
    (`await graph.aget_state(config)`, also after a restart) or a list of `Interrupt`s."""
    found: Sequence[Any]
    if isinstance(source, StateSnapshot):
        found = source.interrupts
    elif isinstance(source, Mapping):
        found = source.get("__interrupt__", ())
    else:
        found = source
    requests: list[ApprovalRequest] = []
    for item in found:
        value = getattr(item, "value", None)
        if isinstance(value, Mapping) and value.get("kind") == INTERRUPT_KIND:
            requests.append(
                ApprovalRequest(
                    interrupt_id=item.id,
                    run_id=str(value["run_id"]),
                    approval_id=str(value["approval_id"]),
                    call_id=str(value["call_id"]),
                    tool=str(value["tool"]),
                    arguments=dict(value["arguments"]),
                    reason=str(value.get("reason", "")),
                )
            )
    return requests


def resume_command(
    source: Mapping[str, Any] | StateSnapshot | Sequence[Interrupt] | Sequence[ApprovalRequest],
) -> Command:  # type: ignore[type-arg]
    """`Command(resume=...)` answering every steward approval the graph is paused on.

    Each resume value names its approval; the governed tool asks steward for the decision
    (a person approves or rejects in the console, API or CLI; await
    `st.wait_for_decision(approval_id)` to know when). A call still undecided pauses again."""
    items = (
        list(cast("Sequence[Any]", source))
        if not isinstance(source, Mapping | StateSnapshot)
        else []
    )
    requests = (
        cast("list[ApprovalRequest]", items)
        if items and all(isinstance(i, ApprovalRequest) for i in items)
        else approvals(cast("Mapping[str, Any] | StateSnapshot | Sequence[Interrupt]", source))
    )
    if not requests:
        raise StewardLangGraphError("the graph is not paused on a steward approval")
    return Command(resume={r.interrupt_id: {"approval_id": r.approval_id} for r in requests})


# -- the chat model ----------------------------------------------------------------------------


class GovernedChatModel(BaseChatModel):
    """A chat model that delegates to `inner`, each call reserved, priced and recorded by
    steward (`run.model_call`): over budget, the call is refused before it is made."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    run: Any = Field(exclude=True)
    model_id: str
    max_output_tokens: int | None

    @property
    def _llm_type(self) -> str:
        return f"steward:{self.inner._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, **self.inner._identifying_params}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise StewardLangGraphError(
            "steward governs LangGraph model calls on the async path only: run the graph "
            "with ainvoke/astream (the model was not called)"
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        run = cast("steward.Run", self.run)
        async with run.model_call(
            self.model_id,
            max_output_tokens=self.max_output_tokens,
            max_input_tokens=_input_bound(messages, kwargs),
        ) as call:
            result = await self.inner._agenerate(
                messages, stop=stop, run_manager=run_manager, **kwargs
            )
            usage = _usage(result)
            if usage is not None:
                call.settle(input_tokens=usage[0], output_tokens=usage[1])
        return result

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Bind tools the way the inner model does, keeping every call governed."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.inner.bind_tools(tools, **kwargs)
        if isinstance(bound, RunnableBinding) and bound.bound is self.inner:
            return cast("Runnable[Any, AIMessage]", self.bind(**bound.kwargs))
        if isinstance(bound, BaseChatModel):
            return self.model_copy(update={"inner": bound})
        raise StewardLangGraphError(
            f"cannot govern {type(self.inner).__name__}.bind_tools: it returned "
            f"{type(bound).__name__}, which would call the model around steward"
        )


def govern_model(
    run: steward.Run,
    model: BaseChatModel,
    *,
    model_id: str | None = None,
    max_output_tokens: int | None = None,
) -> GovernedChatModel:
    """`model`, with each call priced and budgeted by steward for `run`.

    `model_id` names it for pricing (`provider:model`, as in a steward spec); by default
    it is read from the model. `max_output_tokens` is what a call reserves against the
    budget before it is made; by default the model's own `max_tokens`, else the spec's
    `limits.max_output_tokens`."""
    if isinstance(model, GovernedChatModel):
        model = model.inner
    return GovernedChatModel(
        inner=model,
        run=run,
        model_id=model_id or _model_id(model),
        max_output_tokens=max_output_tokens or _max_tokens(model),
    )


class Governed(NamedTuple):
    model: GovernedChatModel
    tools: ToolNode


def govern(
    run: steward.Run,
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode,
    *,
    model_id: str | None = None,
    max_output_tokens: int | None = None,
) -> Governed:
    """The agent's model and toolset, both governed by steward for `run`."""
    return Governed(
        govern_model(run, model, model_id=model_id, max_output_tokens=max_output_tokens),
        govern_tools(run, tools),
    )


class GovernedRun(NamedTuple):
    run: steward.Run
    model: GovernedChatModel
    tools: ToolNode


async def start(
    st: steward.Steward,
    agent: str,
    text: str,
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode,
    *,
    model_id: str | None = None,
    max_output_tokens: int | None = None,
    effects: Mapping[str, str] | None = None,
    tags: dict[str, str] | None = None,
    started_by: str | None = None,
) -> GovernedRun:
    """Start a run of `agent` (its spec says `model: external`) on the user's `text`,
    declaring the toolset to steward (`effects`: see `declare_tools`), and govern the
    model and the tools for it."""
    run = await st.start_run(
        agent, text, tools=declare_tools(tools, effects=effects), tags=tags, started_by=started_by
    )
    model_, tools_ = govern(
        run, model, tools, model_id=model_id, max_output_tokens=max_output_tokens
    )
    return GovernedRun(run, model_, tools_)


async def attach(
    st: steward.Steward,
    run_id: str,
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode,
    *,
    model_id: str | None = None,
    max_output_tokens: int | None = None,
    effects: Mapping[str, str] | None = None,
) -> GovernedRun:
    """The run `run_id` again (after a restart: `approvals(await graph.aget_state(config))`
    names it), with the model and the tools governed for it."""
    run = await st.attach(run_id, tools=declare_tools(tools, effects=effects))
    model_, tools_ = govern(
        run, model, tools, model_id=model_id, max_output_tokens=max_output_tokens
    )
    return GovernedRun(run, model_, tools_)


def _model_id(model: BaseChatModel) -> str:
    params = model._get_ls_params()
    name = params.get("ls_model_name")
    provider = params.get("ls_provider")
    if name and provider:
        return f"{provider}:{name}"
    return str(name or model._llm_type)


def _max_tokens(model: BaseChatModel) -> int | None:
    for attribute in ("max_tokens", "max_output_tokens", "max_completion_tokens"):
        value = getattr(model, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _input_bound(messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> int:
    """An upper bound of the prompt's tokens, for the reservation: its UTF-8 bytes (a
    token is at least one byte) plus the bound tools' schemas and a per-message margin."""
    size = len(_json(kwargs.get("tools", [])).encode())
    for message in messages:
        size += len(_text(message.content).encode()) + 16
        size += len(_json(getattr(message, "tool_calls", None) or []).encode())
    return size


def _usage(result: ChatResult) -> tuple[int, int] | None:
    """The tokens the provider reported, or None when it reported none (steward then
    charges the call its whole reservation, marked estimated: never free)."""
    input_tokens = output_tokens = 0
    reported = False
    for generation in result.generations:
        message = generation.message if isinstance(generation, ChatGeneration) else None
        usage = getattr(message, "usage_metadata", None)
        if usage:
            input_tokens += int(usage.get("input_tokens", 0))
            output_tokens += int(usage.get("output_tokens", 0))
            reported = True
    token_usage = (result.llm_output or {}).get("token_usage")
    if not reported and isinstance(token_usage, Mapping):
        input_tokens = int(token_usage.get("prompt_tokens", 0))
        output_tokens = int(token_usage.get("completion_tokens", 0))
        reported = True
    return (input_tokens, output_tokens) if reported else None
