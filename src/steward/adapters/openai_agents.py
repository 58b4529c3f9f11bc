"""Govern an OpenAI Agents SDK agent with steward, through the public facade only.

    governed = await start(st, "refund-agent", agent, text)  # declares its tools, starts a run
    result = await governed.run_until_done(text)              # instead of Runner.run(agent, text)

`governed.agent` is a copy of the agent whose whole toolset crosses steward's gate: every
`FunctionTool` it holds, every tool the SDK obtains from its MCP servers at run time, and
the same for the agents it hands off to. The copy's model is wrapped too (`GovernedModel`),
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

A kill switch flipped mid-run answers the next call `Denied` (agent.disabled); the adapter
raises `steward.AgentDisabled` from it, which stops the SDK run and fails the steward run.
A budget that cannot cover the next model call raises `steward.BudgetExceeded` before it.

Tools steward cannot gate (hosted tools such as web search run on OpenAI's servers;
computer, shell and patch tools) are refused when the agent is governed, never silently
let through. Known gaps: the SDK turns an exception of a function tool into a message for
the model (its failure_error_function) before the adapter sees it, so steward records that
message as the call's result (set `failure_error_function=None` on a tool to have the
error recorded as one); a tool an MCP server adds after `start` is denied (`tool.unbound`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import steward

try:
    from agents import (
        Agent,
        FunctionTool,
        Handoff,
        Model,
        ModelProvider,
        ModelResponse,
        ModelSettings,
        ModelTracing,
        RunConfig,
        Runner,
        RunResult,
        RunState,
        ToolApprovalItem,
    )
    from agents.agent_output import AgentOutputSchemaBase
    from agents.items import TResponseInputItem, TResponseStreamEvent
    from agents.models.default_models import get_default_model
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
    "attach",
    "declarations",
    "start",
]

Verdict = steward.Verdict


class UngovernableTool(steward.StewardError):
    """The agent holds a tool whose calls steward cannot see or stop (a hosted tool runs on
    OpenAI's servers); governing it would be a silent allow, so it is refused."""

    code = "adapter.ungovernable_tool"


# --- the model -----------------------------------------------------------------------------


class GovernedModel(Model):
    """A `Model` that delegates to another and records each call on a steward run: the
    reservation is taken before the call (`steward.BudgetExceeded` stops it), the usage
    the response reports settles it, and the latency is measured around it."""

    def __init__(
        self,
        inner: Model | str | None,
        run: steward.Run,
        *,
        name: str,
        resolve: Callable[[str | None], Model] | None = None,
    ) -> None:
        self._inner = inner
        self._run = run
        self._resolve = resolve or MultiProvider().get_model
        self.name = name

    def _model(self) -> Model:
        if not isinstance(self._inner, Model):  # a model name: resolved by the run's provider
            self._inner = self._resolve(self._inner)
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
    """The name steward prices a model by: `given`, else the agent's model name (the SDK's
    default model when it names none) at provider openai; a Model object without a name
    is priced as unknown (under a budget steward then refuses it: name it)."""
    if given:
        return given
    named = model if isinstance(model, str) else getattr(model, "model", None)
    if model is None:
        named = get_default_model()
    if isinstance(named, str) and named:
        return named if ":" in named else f"openai:{named}"
    return f"external:{type(model).__name__}"


# --- the tools -----------------------------------------------------------------------------


def _recordable(result: Any) -> Any:
    """What steward records for a tool's output: JSON, with the SDK's output models (and
    anything else it holds) as their JSON, or as text when they have none."""

    def encode(value: Any) -> Any:
        dump = getattr(value, "model_dump", None)
        return dump(mode="json") if callable(dump) else str(value)

    try:
        return json.loads(json.dumps(result, default=encode, allow_nan=False))
    except (TypeError, ValueError):  # not encodable (a cycle, a NaN): its text, not a crash
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


async def declarations(
    agent: Agent[Any], *, effects: Mapping[str, str] | None = None
) -> list[steward.Tool]:
    """Steward's declarations of every tool `agent` has now (its function tools and what
    its connected MCP servers list, then the agents it hands off to), for decide-only use:
    the SDK runs them. A tool's effect is "write" (steward's safe default: its intent is
    recorded first and it is never repeated) unless `effects` names another."""
    said = dict(effects or {})
    found: dict[str, steward.Tool] = {}
    seen: set[int] = set()
    pending = [agent]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for tool in await current.get_all_tools(RunContextWrapper(context=None)):
            sdk_tool = _function_tool(tool)
            found.setdefault(
                sdk_tool.name,
                steward.external_tool(
                    sdk_tool.name,
                    None,
                    parameters=sdk_tool.params_json_schema,
                    effect=said.get(sdk_tool.name, "write"),
                    description=sdk_tool.description,
                ),
            )
        pending.extend(h for h in current.handoffs if isinstance(h, Agent))
    return list(found.values())


def _function_tool(tool: Tool) -> FunctionTool:
    if not isinstance(tool, FunctionTool):
        raise UngovernableTool(
            f"tool {getattr(tool, 'name', type(tool).__name__)!r} ({type(tool).__name__}) "
            "runs where steward cannot gate it; give the agent function tools or MCP "
            "servers instead"
        )
    return tool


def _steward_cause(exc: BaseException) -> steward.StewardError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, steward.StewardError):
            return seen
        seen = seen.__cause__
    return None


def _identity(item: ToolApprovalItem) -> tuple[str, str, str]:
    """(tool, raw arguments, call id) of an interruption."""
    if item.call_id is None or item.tool_name is None:
        raise steward.StewardError(
            f"an interruption without a call id or tool name: {item!r}", code="adapter.item"
        )
    return item.tool_name, item.arguments or "", item.call_id


class GovernedAgent:
    """An SDK agent bound to one steward run. `agent` is the governed copy to give
    `Runner.run`; `run` is the steward run. Get one from `start` or `attach`."""

    def __init__(
        self,
        agent: Agent[Any],
        run: steward.Run,
        st: steward.Steward,
        *,
        model_name: str | None = None,
    ) -> None:
        self.run = run
        self.steward = st
        self._model_name = model_name
        self._verdicts: dict[str, Verdict] = {}  # call id -> steward's answer, this process
        self._governed: dict[int, Agent[Any]] = {}  # id(original agent) -> its governed copy
        self._provider: ModelProvider = MultiProvider()  # resolves model names, lazily
        self.agent = self._agent(agent)

    # -- the governed copy ----------------------------------------------------------------

    def _agent(self, agent: Agent[Any]) -> Agent[Any]:
        done = self._governed.get(id(agent))
        if done is not None:
            return done
        copy = agent.clone(
            tools=[self._tool(t) for t in agent.tools],
            model=self._governed_model(agent.model),
            model_settings=agent.model_settings,  # as they were, not a new model's defaults
        )
        self._governed[id(agent)] = copy
        copy.handoffs = [self._handoff(h) for h in agent.handoffs]
        fetch = copy.get_mcp_tools

        async def governed_mcp_tools(run_context: RunContextWrapper[Any]) -> list[Tool]:
            return [self._tool(t) for t in await fetch(run_context)]

        # MCP servers' tools arrive at run time: they are governed as they arrive.
        setattr(copy, "get_mcp_tools", governed_mcp_tools)  # noqa: B010
        return copy

    def _governed_model(self, model: Model | str | None) -> GovernedModel:
        if isinstance(model, GovernedModel):
            return model
        return GovernedModel(
            model,
            self.run,
            name=_model_name(model, self._model_name),
            resolve=lambda name: self._provider.get_model(name),
        )

    def run_config(self, config: RunConfig | None = None) -> RunConfig | None:
        """`config` made safe to pass to `Runner.run` with `self.agent`: a run-wide
        `model` (which overrides every agent's) is governed too, and model names are
        resolved by its `model_provider`."""
        if config is None:
            return None
        self._provider = config.model_provider
        if config.model is None:
            return config
        return dataclasses.replace(config, model=self._governed_model(config.model))

    def _handoff(self, handoff: Agent[Any] | Handoff[Any, Any]) -> Any:
        if isinstance(handoff, Agent):
            return self._agent(handoff)
        invoke = handoff.on_invoke_handoff

        async def governed_handoff(ctx: RunContextWrapper[Any], raw: str) -> Any:
            target = await invoke(ctx, raw)
            return self._agent(target) if isinstance(target, Agent) else target

        return dataclasses.replace(handoff, on_invoke_handoff=governed_handoff)

    def _tool(self, tool: Tool) -> FunctionTool:
        original = _function_tool(tool)
        name, invoke = original.name, original.on_invoke_tool

        async def needs_approval(
            _ctx: RunContextWrapper[Any], args: dict[str, Any], call_id: str
        ) -> bool:
            # The SDK asks before it runs the call: steward decides, and only a `review`
            # decision becomes the SDK's pause. Nothing runs here.
            verdict = await self.run.decide(name, args, call_id=call_id)
            self._verdicts[call_id] = verdict
            return isinstance(verdict, steward.Waiting)

        async def on_invoke_tool(ctx: ToolContext[Any], raw: str) -> Any:
            call_id = ctx.tool_call_id
            verdict = self._verdicts.pop(call_id, None)
            if verdict is None or isinstance(verdict, steward.Waiting):
                verdict = await self._settled(name, raw, call_id)
            if isinstance(verdict, steward.Executed):
                return verdict.result  # on record already: never run twice
            if isinstance(verdict, steward.Denied) and verdict.code == "agent.disabled":
                raise steward.AgentDisabled(verdict.message, code=verdict.code)
            if not isinstance(verdict, steward.Allowed):
                return _not_run(verdict)
            # what steward allowed runs: a person's edits, if they edited the call
            ran = raw if _arguments(raw) == verdict.arguments else json.dumps(verdict.arguments)
            began = time.perf_counter()
            try:
                result = await invoke(ctx, ran)
            except asyncio.CancelledError:  # a timeout: the write may or may not have happened
                await asyncio.shield(
                    self.run.record_result(call_id, error="cancelled while running", unknown=True)
                )
                raise
            except Exception as exc:
                await self.run.record_result(
                    call_id, error=exc, latency_s=time.perf_counter() - began
                )
                raise
            await self.run.record_result(
                call_id, _recordable(result), latency_s=time.perf_counter() - began
            )
            return result

        return dataclasses.replace(
            original, needs_approval=needs_approval, on_invoke_tool=on_invoke_tool
        )

    async def _settled(self, name: str, raw: str, call_id: str) -> Verdict:
        """Steward's answer for a call the SDK is about to run with no fresh decision in
        this process: after a pause, after a restart, or when the SDK paused on its own.
        Asked as the same call again (same tool, arguments and call id), which answers
        what is on record (Waiting while pending, the person's decision, a recorded
        result) and decides a call steward has not seen."""
        args = _arguments(raw)
        if args is None:  # the SDK pauses such calls without asking: steward denies them
            args = {"arguments": raw}
        return await self.run.decide(name, args, call_id=call_id)

    # -- pauses ---------------------------------------------------------------------------

    async def apply_decisions(
        self,
        state: RunState[Any, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - steward's journal-backed wait takes it
    ) -> list[Verdict]:
        """Wait for steward's decision on each interruption of `state` (a person decides
        in steward: console, API or CLI) and approve or reject it on the state (a
        rejection carries steward's reason to the model); then resume with
        `Runner.run(self.agent, state)`. Raises TimeoutError at the deadline, with the
        approvals still pending and the state unchanged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        decided: list[tuple[ToolApprovalItem, Verdict]] = []
        for item in state.get_interruptions():
            decided.append((item, await self._decision(item, deadline)))
        for item, verdict in decided:
            if isinstance(verdict, steward.Allowed | steward.Executed):
                state.approve(item)
            else:
                state.reject(item, rejection_message=_not_run(verdict))
        return [verdict for _, verdict in decided]

    async def pending(self, state: RunState[Any, Any]) -> list[steward.Waiting]:
        """The interruptions of `state` that wait for a person in steward (to show their
        approval ids, or link to the console)."""
        found: list[steward.Waiting] = []
        for item in state.get_interruptions():
            verdict = await self._settled(*_identity(item))
            if isinstance(verdict, steward.Waiting):
                found.append(verdict)
        return found

    async def _decision(self, item: ToolApprovalItem, deadline: float | None) -> Verdict:
        name, raw, call_id = _identity(item)
        verdict = await self._settled(name, raw, call_id)
        if isinstance(verdict, steward.Waiting):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            await self.steward.wait_for_decision(verdict.approval_id, timeout=left)
            verdict = await self.run.resume(call_id, execute=False)  # the run goes on
            if isinstance(verdict, steward.Waiting):  # decided, yet pending: never allow
                raise steward.StewardError(
                    f"approval {verdict.approval_id} was decided but steward still waits",
                    code="adapter.still_waiting",
                )
        self._verdicts[call_id] = verdict
        return verdict

    async def run_until_done(
        self,
        input: str | list[TResponseInputItem] | RunState[Any, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - per pause, steward's wait takes it
        max_turns: int = 10,
        on_pause: Callable[[RunState[Any, Any]], Awaitable[None]] | None = None,
        run_config: RunConfig | None = None,
    ) -> RunResult:
        """`Runner.run` the governed agent to its end: each pause waits (up to `timeout`
        seconds) for a person's decision in steward and resumes. The steward run then
        finishes with the final output, or fails with the reason the SDK stopped.
        `on_pause` gets each paused RunState first (persist `state.to_string()` to resume
        after a restart with `attach(...).run_until_done(state)`)."""
        run_config = self.run_config(run_config)
        try:
            if isinstance(input, RunState):
                await self.apply_decisions(input, timeout=timeout)
            result = await Runner.run(self.agent, input, max_turns=max_turns, run_config=run_config)
            while result.interruptions:
                state = result.to_state()
                if on_pause is not None:
                    await on_pause(state)
                await self.apply_decisions(state, timeout=timeout)
                result = await Runner.run(
                    self.agent, state, max_turns=max_turns, run_config=run_config
                )
        except TimeoutError:
            raise  # nobody decided yet: the approvals stay pending, the run waiting
        except Exception as exc:
            cause = _steward_cause(exc)  # the SDK wraps what a tool raised in a UserError
            await self.run.fail(f"{type(cause or exc).__name__}: {cause or exc}")
            if cause is not None and cause is not exc:
                raise cause from exc
            raise
        await self.run.finish(str(result.final_output))
        return result


async def start(
    st: steward.Steward,
    spec: str,
    agent: Agent[Any],
    text: str,
    *,
    model_name: str | None = None,
    effects: Mapping[str, str] | None = None,
    tags: dict[str, str] | None = None,
    started_by: str | None = None,
) -> GovernedAgent:
    """Start a steward run of the agent `spec` (its spec says `model: external`) on the
    user's words `text`, with `agent`'s tools declared to it, and return the governed
    agent. `model_name` prices the SDK's model ("openai:gpt-4o-mini"; by default the
    agent's model name). Connect the agent's MCP servers first: their tools are
    declared now, and a tool steward was not told of is denied (`tool.unbound`)."""
    tools = await declarations(agent, effects=effects)
    run = await st.start_run(spec, text, tools=tools, tags=tags, started_by=started_by)
    return GovernedAgent(agent, run, st, model_name=model_name)


async def attach(
    st: steward.Steward,
    run_id: str,
    agent: Agent[Any],
    *,
    model_name: str | None = None,
    effects: Mapping[str, str] | None = None,
) -> GovernedAgent:
    """The steward run `run_id` again (another process, after a restart), governing
    `agent`: resume a saved RunState with
    `run_until_done(await RunState.from_string(governed.agent, saved))`. Calls on
    record answer what they did and never run again."""
    tools = await declarations(agent, effects=effects)
    run = await st.attach(run_id, tools=tools)
    return GovernedAgent(agent, run, st, model_name=model_name)
