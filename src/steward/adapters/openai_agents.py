"""Govern an OpenAI Agents SDK agent with steward, through the public facade only.

`govern(agent, run)` returns a copy of the agent whose whole toolset crosses steward's
gate: every `FunctionTool` it holds, every tool the SDK obtains from its MCP servers at
run time, and the same for the agents it hands off to. The copy's model is wrapped too,
so the SDK's own LLM calls are priced, budgeted (reserved before, settled after), traced
and counted on the run.

How a tool call goes (decide-only: the SDK runs its tool itself, steward never does):

- The SDK asks `needs_approval(ctx, arguments, call_id)`; the adapter asks steward
  `run.decide(tool, arguments, call_id)`. Allowed or Denied -> no pause; Waiting (a
  `review` decision) -> True, which is the SDK's native pause: the run ends with an
  interruption and a serialisable `RunState`.
- The SDK then calls the tool's `on_invoke_tool`: an Allowed call runs the original tool
  with the arguments steward allowed (edited ones, when a person edited them) and the
  result is recorded (`run.record_result`); a Denied call returns the reason to the model
  without running; a call steward already recorded returns the stored result without
  running again (at most once, also after a restart).
- A person decides in steward (console, API, CLI). `GovernedAgent.apply_decisions(state)`
  waits for those decisions (journal-backed, any process) and approves or rejects each
  interruption on the `RunState`; `Runner.run(governed.agent, state)` then resumes. The
  RunState is never the authority: a call it approves that steward did not is not run.

Tools steward cannot see run (hosted tools such as web search run on OpenAI's servers,
computer/shell/patch tools) are refused when the agent is governed, never silently let
through.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import steward

try:
    from agents import (
        Agent,
        FunctionTool,
        Handoff,
        Model,
        ModelResponse,
        ModelSettings,
        ModelTracing,
        Runner,
        RunResult,
        RunState,
        ToolApprovalItem,
    )
    from agents.agent_output import AgentOutputSchemaBase
    from agents.items import TResponseInputItem, TResponseStreamEvent
    from agents.models.multi_provider import MultiProvider
    from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
    from agents.run_context import RunContextWrapper
    from agents.tool import Tool
    from agents.tool_context import ToolContext
    from openai.types.responses.response_prompt_param import ResponsePromptParam
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "steward.adapters.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'steward[openai-agents]'"
    ) from exc

__all__ = [
    "GovernedAgent",
    "GovernedModel",
    "UngovernableTool",
    "govern",
    "run_governed",
]

Verdict = steward.Allowed | steward.Denied | steward.Waiting | steward.Executed | steward.Failed


class UngovernableTool(steward.StewardError):
    """The agent holds a tool whose calls steward cannot see or stop (a hosted tool runs on
    OpenAI's servers); governing it would be a silent allow, so it is refused."""

    code = "adapter.ungovernable_tool"


# --- the model -----------------------------------------------------------------------------


class GovernedModel(Model):
    """A `Model` that delegates to another and records each call on a steward run: the
    reservation is taken before the call (`steward.BudgetExceeded` stops it), the usage
    the response reports settles it, and the latency is measured around it."""

    def __init__(self, inner: Model | str | None, run: steward.Run, *, name: str) -> None:
        self._inner = inner
        self._run = run
        self.name = name

    def _model(self) -> Model:
        if not isinstance(self._inner, Model):  # a model name: the SDK's default provider
            self._inner = MultiProvider().get_model(self._inner)
        return self._inner

    def _reservation(self, settings: ModelSettings) -> dict[str, int]:
        return {} if settings.max_tokens is None else {"max_output_tokens": settings.max_tokens}

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
        model = self._model()
        async with self._run.model_call(self.name, **self._reservation(model_settings)) as call:
            response = await model.get_response(
                system_instructions, input, model_settings, tools, output_schema, handoffs,
                tracing, previous_response_id=previous_response_id,
                conversation_id=conversation_id, prompt=prompt,
            )  # fmt: skip
            call.settle(
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
            )
        return response

    async def stream_response(
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
        model = self._model()
        async with self._run.model_call(self.name, **self._reservation(model_settings)) as call:
            stream = model.stream_response(
                system_instructions, input, model_settings, tools, output_schema, handoffs,
                tracing, previous_response_id=previous_response_id,
                conversation_id=conversation_id, prompt=prompt,
            )  # fmt: skip
            async for event in stream:
                if event.type == "response.completed" and event.response.usage is not None:
                    call.settle(
                        input_tokens=event.response.usage.input_tokens,
                        output_tokens=event.response.usage.output_tokens,
                    )
                yield event

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        if isinstance(request.error, steward.StewardError):  # a budget or a kill switch
            return ModelRetryAdvice(suggested=False, reason=str(request.error))
        inner = self._inner
        return inner.get_retry_advice(request) if isinstance(inner, Model) else None

    async def close(self) -> None:
        if isinstance(self._inner, Model):
            await self._inner.close()


def _model_name(model: Model | str | None, given: str | None) -> str:
    if given:
        return given
    if isinstance(model, str):
        return model if ":" in model else f"openai:{model}"
    named = getattr(model, "model", None)
    if isinstance(named, str) and named:
        return named if ":" in named else f"openai:{named}"
    return "external:" + (type(model).__name__ if model is not None else "default")


# --- the tools -----------------------------------------------------------------------------


def _recordable(result: Any) -> Any:
    """What steward records for a tool's output: JSON as is, a model as its JSON, else text."""
    if result is None or isinstance(result, str | int | float | bool | list | dict):
        return result
    dump = getattr(result, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return str(result)


def _arguments(raw: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _not_run(verdict: Verdict) -> str:
    """The model-visible text for a call that did not run."""
    if isinstance(verdict, steward.Denied):
        return f"Not done: steward denied {verdict.tool}: {verdict.message}"
    if isinstance(verdict, steward.Waiting):
        return (
            f"Not done: {verdict.tool} still waits for a person's decision "
            f"(approval {verdict.approval_id})."
        )
    if isinstance(verdict, steward.Failed):
        return f"Not done: {verdict.tool} failed: {verdict.error}"
    raise AssertionError(f"not a refusal: {verdict!r}")


class GovernedAgent:
    """An agent bound to one steward run: `agent` is what you give `Runner.run`."""

    def __init__(self, agent: Agent[Any], run: steward.Run, *, model_name: str | None) -> None:
        self.run = run
        self._model_name = model_name
        self._verdicts: dict[str, Verdict] = {}  # call id -> steward's latest answer
        self._governed: dict[int, Agent[Any]] = {}  # id(original agent) -> its governed copy
        self.agent = self._agent(agent)

    # building the governed copy

    def _agent(self, agent: Agent[Any]) -> Agent[Any]:
        done = self._governed.get(id(agent))
        if done is not None:
            return done
        copy = agent.clone(
            tools=[self._tool(t) for t in agent.tools],
            model=GovernedModel(
                agent.model, self.run, name=_model_name(agent.model, self._model_name)
            ),
        )
        self._governed[id(agent)] = copy
        copy.handoffs = [self._handoff(h) for h in agent.handoffs]
        original = copy.get_mcp_tools

        async def governed_mcp_tools(run_context: RunContextWrapper[Any]) -> list[Tool]:
            return [self._tool(t) for t in await original(run_context)]

        # The MCP servers' tools are fetched at run time: govern them as they arrive.
        setattr(copy, "get_mcp_tools", governed_mcp_tools)  # noqa: B010
        return copy

    def _handoff(self, handoff: Agent[Any] | Handoff[Any, Any]) -> Any:
        if isinstance(handoff, Agent):
            return self._agent(handoff)
        invoke = handoff.on_invoke_handoff

        async def governed_handoff(ctx: RunContextWrapper[Any], raw: str) -> Any:
            target = await invoke(ctx, raw)
            return self._agent(target) if isinstance(target, Agent) else target

        return dataclasses.replace(handoff, on_invoke_handoff=governed_handoff)

    def _tool(self, tool: Tool) -> FunctionTool:
        if not isinstance(tool, FunctionTool):
            raise UngovernableTool(
                f"tool {getattr(tool, 'name', type(tool).__name__)!r} "
                f"({type(tool).__name__}) runs where steward cannot gate it; "
                "give the agent function tools or MCP servers instead"
            )
        name = tool.name
        invoke = tool.on_invoke_tool

        async def needs_approval(
            _ctx: RunContextWrapper[Any], args: dict[str, Any], call_id: str
        ) -> bool:
            verdict = await self.run.decide(name, args, call_id=call_id)
            self._verdicts[call_id] = verdict
            return isinstance(verdict, steward.Waiting)

        async def on_invoke_tool(ctx: ToolContext[Any], raw: str) -> Any:
            call_id = ctx.tool_call_id
            verdict = self._verdicts.pop(call_id, None)
            if verdict is None or isinstance(verdict, steward.Waiting):
                verdict = await self._settled(name, raw, call_id)
            if isinstance(verdict, steward.Executed):
                return verdict.result  # recorded before: never run twice
            if not isinstance(verdict, steward.Allowed):
                return _not_run(verdict)
            ran = raw if _arguments(raw) == verdict.arguments else json.dumps(verdict.arguments)
            try:
                result = await invoke(ctx, ran)
            except BaseException as exc:
                await self.run.record_result(call_id, error=exc)
                raise
            await self.run.record_result(call_id, _recordable(result))
            return result

        return dataclasses.replace(
            tool, needs_approval=needs_approval, on_invoke_tool=on_invoke_tool
        )

    async def _settled(self, name: str, raw: str, call_id: str) -> Verdict:
        """Steward's answer for a call the SDK is about to run without a fresh decision in
        this process (after a pause, a restart, or a pause the SDK took on its own)."""
        try:
            return cast(Verdict, await self.run.resume(call_id, execute=False))
        except steward.StewardError:
            pass  # steward never saw this call: decide it now
        args = _arguments(raw)
        if args is None:
            return steward.Denied(
                call_id=call_id,
                tool=name,
                reasons=(),
                message="the arguments are not a JSON object",
            )
        return cast(Verdict, await self.run.decide(name, args, call_id=call_id))

    # pauses

    async def apply_decisions(
        self,
        state: RunState[Any, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - steward's journal-backed wait takes it
    ) -> list[Verdict]:
        """Wait for steward's decision on every interruption of `state` and approve or reject
        it there (a rejection carries steward's reason to the model); then resume with
        `Runner.run(self.agent, state)`. Raises TimeoutError at the deadline, leaving the
        approvals pending and the state unchanged for a later try."""
        deadline = None if timeout is None else time.monotonic() + timeout
        decided: list[tuple[ToolApprovalItem, Verdict]] = []
        for item in state.get_interruptions():
            verdict = await self._decision(item, deadline)
            decided.append((item, verdict))
        for item, verdict in decided:
            if isinstance(verdict, steward.Allowed | steward.Executed):
                state.approve(item)
            else:
                state.reject(item, rejection_message=_not_run(verdict))
        return [verdict for _, verdict in decided]

    async def _decision(self, item: ToolApprovalItem, deadline: float | None) -> Verdict:
        call_id = item.call_id
        if call_id is None or item.tool_name is None:
            raise steward.StewardError(f"interruption without a call id: {item!r}")
        verdict = await self._settled(item.tool_name, item.arguments or "", call_id)
        while isinstance(verdict, steward.Waiting):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            await self.run.steward.wait_for_decision(verdict.approval_id, timeout=left)
            verdict = cast(Verdict, await self.run.resume(call_id, execute=False))
        self._verdicts[call_id] = verdict
        return verdict


def govern(agent: Agent[Any], run: steward.Run, *, model_name: str | None = None) -> GovernedAgent:
    """Bind `agent` to a steward run: `govern(agent, run).agent` is a copy whose every tool
    call (function tools, MCP tools, tools of agents it hands off to) and every model call
    cross steward. `model_name` prices the model (e.g. "openai:gpt-4o-mini"); by default the
    agent's model name. Raises UngovernableTool for a tool steward cannot gate."""
    return GovernedAgent(agent, run, model_name=model_name)


async def run_governed(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    run: steward.Run,
    timeout: float | None = None,  # noqa: ASYNC109 - per pause, steward's wait takes it
    model_name: str | None = None,
    max_turns: int = 10,
    on_pause: Callable[[RunState[Any, Any]], Awaitable[None]] | None = None,
) -> RunResult:
    """Run `agent` on `input` under steward until it finishes: each pause waits for a
    person's decision in steward (up to `timeout` seconds per pause) and resumes; the run
    is finished with the final output, or failed with the reason when the SDK stops.
    `on_pause` receives each paused RunState first (to persist `state.to_string()` for a
    restart)."""
    governed = govern(agent, run, model_name=model_name)
    try:
        result = await Runner.run(governed.agent, input, max_turns=max_turns)
        while result.interruptions:
            state = result.to_state()
            if on_pause is not None:
                await on_pause(state)
            await governed.apply_decisions(state, timeout=timeout)
            result = await Runner.run(governed.agent, state, max_turns=max_turns)
    except TimeoutError:
        raise  # the approvals stay pending; the run stays waiting
    except Exception as exc:
        await run.fail(f"{type(exc).__name__}: {exc}")
        raise
    await run.finish(str(result.final_output))
    return cast(RunResult, result)
