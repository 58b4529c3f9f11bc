"""Govern a Pydantic AI agent with steward: one capability, `Governed`.

    agent = Agent(model, tools=[...], capabilities=[Governed(st, "refund-agent")])
    result = await governed.run(agent, "refund order 10056")

The capability wraps the agent's whole assembled toolset (its own tools, toolsets given
at construction or run time, MCP servers) in a `GovernedToolset`, and its model in a
`GovernedModel`, both thin layers over the public facade (`steward.Run`):

- every tool call is decided by steward (`Run.decide`) before the framework runs it,
  and its result recorded (`Run.record_result`): allowed calls run once, denied ones
  return steward's reasons to the model as a failed tool result (`ToolFailed`);
- a `review` decision becomes Pydantic AI's deferred tools: the call raises
  `ApprovalRequired` with steward's approval id in its metadata, the run ends with
  `DeferredToolRequests`, and `Governed.decisions` turns the person's decision into
  `DeferredToolResults` to resume with; the resumed call runs what steward approved
  (edited arguments included), exactly once, also in another process;
- every model request is reserved against the budget before it is sent and settled
  with the usage the provider reported (`Run.model_call`);
- the agent run is one steward run: started on the first step with the user's words,
  attached again when a run resumes after deferred tools, finished with the output.

Only `import steward` is used: the adapter is a client of the public API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import WrapRunHandler
from pydantic_ai.exceptions import ApprovalRequired, ToolFailed
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.run import AgentRunResult
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import (
    DeferredToolRequests,
    DeferredToolResults,
    RunContext,
    ToolApproved,
    ToolDefinition,
    ToolDenied,
)
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool, WrapperToolset
from pydantic_core import to_jsonable_python

import steward

__all__ = ["Governed", "GovernedModel", "GovernedToolset", "RunStopped"]

META_KEY = "steward"
"""Where steward's ids travel in Pydantic AI values: `ModelResponse.metadata["steward"]`
(the run id, never sent to the model) and `DeferredToolRequests.metadata[call]["steward"]`
(run, call and approval ids)."""

STOPPING = frozenset({"agent.disabled", "run.cancelled", "run.finished"})
"""Denials that end the agent run instead of going back to the model: the kill switch,
a cancelled or finished run. The model gets no further turn."""


class RunStopped(steward.StewardError):
    """The agent run was stopped by steward (kill switch, cancelled run): raised out of
    `agent.run`, after the steward run is marked failed with the reason."""

    code = "run.stopped"


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=repr)


def _response_metadata(response: ModelResponse) -> str | None:
    meta = response.metadata or {}
    found = meta.get(META_KEY)
    if isinstance(found, dict) and isinstance(found.get("run_id"), str):
        return str(found["run_id"])
    return None


def _stamped_run(messages: Sequence[ModelMessage]) -> str | None:
    """The steward run of the last governed model response in this history."""
    for message in reversed(messages):
        if isinstance(message, ModelResponse):
            found = _response_metadata(message)
            if found is not None:
                return found
    return None


def _call_id(ctx: RunContext[Any]) -> str:
    """Steward's call id for the tool call in `ctx`: the model's own id, made unique in
    the history (a model that numbers its ids per response, as TestModel does, repeats
    them; the n-th response using an id gets `#n`). The same on a resumed run."""
    tool_call_id = ctx.tool_call_id
    if not tool_call_id:
        raise steward.StewardError(
            "a tool call without a tool_call_id cannot be governed", code="call.unidentified"
        )
    seen = 0
    for message in ctx.messages:
        if isinstance(message, ModelResponse) and any(
            isinstance(p, ToolCallPart) and p.tool_call_id == tool_call_id for p in message.parts
        ):
            seen += 1
    return tool_call_id if seen <= 1 else f"{tool_call_id}#{seen}"


def _size(value: Any) -> int:
    return len(json.dumps(_jsonable(value), ensure_ascii=False).encode("utf-8"))


def _input_bound(
    messages: Sequence[ModelMessage],
    params: ModelRequestParameters,
    sizes: dict[int, tuple[ModelMessage, int]],
) -> int:
    """An upper bound on the request's input tokens: a BPE token is at least one byte,
    so the UTF-8 size of everything sent (history, tool schemas) plus framing bounds it.
    `sizes` remembers each message's size for the run (a history only grows)."""
    total = _size(params.function_tools) + 256
    for message in messages:
        known = sizes.get(id(message))
        if known is None or known[0] is not message:
            known = sizes[id(message)] = (message, _size(message))
        total += known[1] + 16
    return total


# -- the per-run session -----------------------------------------------------------------


@dataclass
class _Session:
    """One agent run's link to its steward run (per run: `Governed.for_run`)."""

    governed: Governed
    run: steward.Run | None = None
    ctx: RunContext[Any] | None = None
    bound: dict[str, ToolDefinition] = field(default_factory=dict)
    sizes: dict[int, tuple[ModelMessage, int]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def tools(self, defs: Iterable[ToolDefinition]) -> list[steward.Tool]:
        effects = self.governed.effects
        return [
            steward.external_tool(
                d.name,
                None,
                parameters=dict(d.parameters_json_schema),
                effect=effects.get(d.name, steward.Effect.WRITE),
                description=d.description or "",
            )
            for d in defs
        ]

    async def ensure(self, ctx: RunContext[Any], defs: Iterable[ToolDefinition]) -> steward.Run:
        """The steward run of this agent run, started (or attached) on first need, with
        every tool the agent has now bound (a tool seen later attaches it again)."""
        wanted = {d.name: d for d in defs}
        async with self.lock:
            if self.run is not None and wanted.keys() <= self.bound.keys():
                return self.run
            governed = self.governed
            self.bound.update(wanted)
            tools = self.tools(self.bound.values())
            if self.run is not None:
                self.run = await governed.steward.attach(self.run.id, tools=tools)
                return self.run
            # a run resumed from a history (deferred tool results, no new prompt) goes on
            # as the same steward run; a finished one answers every call `run.finished`
            resumed = _stamped_run(ctx.messages) if ctx.prompt is None else None
            if resumed is not None:
                self.run = await governed.steward.attach(resumed, tools=tools)
                return self.run
            text = ctx.prompt if isinstance(ctx.prompt, str) else json.dumps(_jsonable(ctx.prompt))
            self.run = await governed.steward.start_run(
                governed.agent, text or "", tools=tools, tags=governed.tags,
                started_by=governed.started_by,
            )  # fmt: skip
            return self.run

    def stamp(self, response: ModelResponse) -> None:
        """Mark the response with its steward run (metadata: never sent to the model), so
        a run resumed from this history attaches to the same steward run."""
        if self.run is not None:
            response.metadata = {**(response.metadata or {}), META_KEY: {"run_id": self.run.id}}

    def stamp_stream(self, stream: StreamedResponse) -> None:
        if self.run is not None:
            stream.metadata = {**(stream.metadata or {}), META_KEY: {"run_id": self.run.id}}


# -- the toolset -------------------------------------------------------------------------


@dataclass
class GovernedToolset(WrapperToolset[Any]):
    """Every call of every tool of the wrapped toolset crosses steward's gate: the
    framework runs a call only when steward allows it, with the arguments steward
    allowed, and steward records what it returned."""

    session: _Session | None = None

    def _session(self) -> _Session:
        if self.session is None:
            raise steward.StewardError(
                "GovernedToolset is built by the Governed capability (Agent(capabilities=[...]))",
                code="adapter.unbound",
            )
        return self.session

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        tools = await self.wrapped.get_tools(ctx)
        await self._session().ensure(ctx, (t.tool_def for t in tools.values()))
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        session = self._session()
        run = await session.ensure(ctx, (tool.tool_def,))
        call_id = _call_id(ctx)
        proposed = _jsonable(tool_args)
        verdict: steward.Verdict
        if ctx.tool_call_approved:
            # approved by the program: only a person's decision in steward counts. A call
            # still pending stays deferred (and the steward run stays waiting)
            still = [w for w in await run.pending() if w.call_id == call_id]
            try:
                verdict = still[0] if still else await run.resume(call_id, execute=False)
            except steward.StewardError as exc:  # approved by the framework, never seen here
                if exc.code != "store.not_found":
                    raise
                verdict = await run.decide(name, proposed, call_id=call_id)
        else:
            verdict = await run.decide(name, proposed, call_id=call_id)
        match verdict:
            case steward.Allowed(arguments=allowed):
                args = tool_args if allowed == proposed else self._validated(tool, allowed)
                return await self._run_allowed(run, call_id, name, args, ctx, tool)
            case steward.Executed(result=result):
                return result  # ran before (another attempt, another process): never again
            case steward.Waiting(approval_id=approval_id, reason=reason):
                raise ApprovalRequired(
                    metadata={
                        META_KEY: {
                            "run_id": run.id,
                            "call_id": call_id,
                            "approval_id": approval_id,
                            "reason": reason,
                        }
                    }
                )
            case steward.Denied(message=message, reasons=reasons):
                code = reasons[0].code if reasons else "denied"
                if code in STOPPING:
                    raise RunStopped(f"steward stopped the run: {message}", code=code)
                raise ToolFailed(f"steward denied this call ({code}): {message}")
            case steward.Failed(error=error, code=code, unknown=unknown):
                if unknown:
                    raise ToolFailed(
                        f"steward: the outcome of this call is unknown ({code}); it is not "
                        "repeated, a person must reconcile it"
                    )
                raise ToolFailed(f"the call failed ({code}): {error}")
        raise AssertionError(f"unexpected verdict {verdict!r}")  # pragma: no cover

    async def _run_allowed(
        self,
        run: steward.Run,
        call_id: str,
        name: str,
        args: dict[str, Any],
        ctx: RunContext[Any],
        tool: ToolsetTool[Any],
    ) -> Any:
        """Run the call steward allowed (a person's edits validated by the tool's own
        validator), once, and record what it gave."""
        began = time.perf_counter()
        try:
            result = await self.wrapped.call_tool(name, args, ctx, tool)
        except Exception as exc:
            await run.record_result(call_id, error=exc, latency_s=time.perf_counter() - began)
            raise
        latency = time.perf_counter() - began
        sent = _jsonable(result)
        recorded = await run.record_result(call_id, sent, latency_s=latency)
        if isinstance(recorded, steward.Failed):
            raise ToolFailed(f"steward withheld the result ({recorded.code}): {recorded.error}")
        # steward's scanners may have redacted the result: the model sees what steward kept
        return result if recorded.result == sent else recorded.result

    @staticmethod
    def _validated(tool: ToolsetTool[Any], arguments: dict[str, Any]) -> dict[str, Any]:
        validated = tool.args_validator.validate_python(arguments)
        return dict(validated) if isinstance(validated, Mapping) else dict(arguments)


# -- the model ---------------------------------------------------------------------------


class GovernedModel(WrapperModel):
    """Every request of the wrapped model is reserved against the run's budget before it
    is sent (steward.BudgetExceeded: it is not sent) and settled with the usage the
    provider reported: priced, traced, counted as a step."""

    def __init__(self, wrapped: Model, session: _Session, *, price_as: str | None = None) -> None:
        super().__init__(wrapped)
        self._steward_session = session
        self._price_as = price_as

    def _priced_name(self) -> str:
        return self._price_as or f"{self.wrapped.system}:{self.wrapped.model_name}"

    async def _governed_run(self, params: ModelRequestParameters) -> steward.Run:
        session = self._steward_session
        if session.run is not None:
            return session.run
        if session.ctx is None:  # pragma: no cover - wrap_run binds it first
            raise steward.StewardError(
                "model request outside a governed run", code="adapter.unbound"
            )
        return await session.ensure(session.ctx, params.function_tools)

    @asynccontextmanager
    async def _reserved(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> AsyncIterator[steward.ModelCall]:
        run = await self._governed_run(params)
        max_tokens = (model_settings or {}).get("max_tokens")
        try:
            async with run.model_call(
                self._priced_name(),
                max_output_tokens=max_tokens if isinstance(max_tokens, int) else None,
                max_input_tokens=_input_bound(messages, params, self._steward_session.sizes),
            ) as call:
                yield call
        except steward.AgentDisabled as exc:  # the kill switch: no more model turns either
            raise RunStopped(f"steward stopped the run: {exc}", code=exc.code) from exc

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        async with self._reserved(messages, model_settings, model_request_parameters) as call:
            response = await self.wrapped.request(
                messages, model_settings, model_request_parameters
            )
            usage = response.usage
            call.settle(
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cached_input_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            )  # fmt: skip
        self._steward_session.stamp(response)
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        async with (
            self._reserved(messages, model_settings, model_request_parameters) as call,
            self.wrapped.request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as stream,
        ):
            self._steward_session.stamp_stream(stream)
            try:
                yield stream
            finally:
                usage = stream.usage
                call.settle(
                    input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                    cached_input_tokens=usage.cache_read_tokens,
                    cache_write_tokens=usage.cache_write_tokens,
                )  # fmt: skip


# -- the capability ----------------------------------------------------------------------


@dataclass
class Governed(AbstractCapability[Any]):
    """Govern an agent with steward: `Agent(..., capabilities=[Governed(st, "name")])`.

    `agent`: the steward spec's name (its `model: external`, its `tools:` listing every
    tool the agent has). `effects`: the effect of each tool (`"read"`, `"write"`, ...;
    unlisted tools are `"write"`, the safe default: intent recorded, never repeated).
    `price_as`: the price-table name of the model when it is not `system:model_name`.
    `tags`, `started_by`: of each steward run started.
    """

    steward: steward.Steward
    agent: str
    effects: Mapping[str, str] = field(default_factory=dict)
    price_as: str | None = None
    tags: dict[str, str] | None = None
    started_by: str | None = None
    _session: _Session | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        known = {e.value for e in steward.Effect}
        for tool, effect in self.effects.items():
            if effect not in known:
                raise ValueError(
                    f"Governed(effects={{{tool!r}: {effect!r}}}): the effect of {tool} must be "
                    f"one of {', '.join(sorted(known))}"
                )

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds an open Steward: not spec-serialisable

    async def for_run(self, ctx: RunContext[Any]) -> AbstractCapability[Any]:
        fresh = replace(self, _session=None)
        fresh._session = _Session(fresh)
        return fresh

    def _bound(self) -> _Session:
        if self._session is None:  # pragma: no cover - pydantic-ai calls for_run first
            raise steward.StewardError("Governed used outside an agent run", code="adapter.unbound")
        return self._session

    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any] | None:
        return GovernedToolset(toolset, session=self._bound())

    def get_wrapper_model(self, model: Model) -> Model | None:
        return GovernedModel(model, self._bound(), price_as=self.price_as)

    async def wrap_run(
        self, ctx: RunContext[Any], *, handler: WrapRunHandler
    ) -> AgentRunResult[Any]:
        session = self._bound()
        session.ctx = ctx
        try:
            result = await handler()
        except Exception as exc:
            run = session.run
            if run is not None and not run.finished:
                await run.fail(f"{type(exc).__name__}: {exc}")
            raise
        run = session.run
        if (
            run is not None
            and not run.finished
            and not isinstance(result.output, DeferredToolRequests)
        ):
            output = result.output
            answer = output if isinstance(output, str) else json.dumps(_jsonable(output))
            await run.finish(answer)
        return result

    # -- a person's decisions -> Pydantic AI's deferred tool results --------------------

    async def decisions(
        self,
        requests: DeferredToolRequests,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline for the person
    ) -> DeferredToolResults:
        """Wait for steward's decision on each call of `requests` that steward sent for
        review, and answer them for `agent.run(..., deferred_tool_results=...)`:
        approved -> `ToolApproved` (with a person's edited arguments), rejected or
        expired -> `ToolDenied` with who and why. Raises TimeoutError after `timeout`
        seconds (the approvals stay pending; ask again later, in any process)."""
        results = DeferredToolResults()
        refused: dict[str, list[tuple[str, str]]] = {}  # run -> (tool, call id)
        for call in requests.approvals:
            meta = requests.metadata.get(call.tool_call_id, {}).get(META_KEY)
            if not isinstance(meta, dict):
                # asked for by the framework itself (requires_approval=True), not by
                # steward: steward decides when the call is made
                results.approvals[call.tool_call_id] = ToolApproved()
                continue
            decision = await self.steward.wait_for_decision(meta["approval_id"], timeout=timeout)
            if isinstance(decision, steward.Approved):
                results.approvals[call.tool_call_id] = ToolApproved(
                    override_args=decision.arguments if decision.edited else None
                )
            else:
                said = f": {decision.comment}" if decision.comment else ""
                results.approvals[call.tool_call_id] = ToolDenied(
                    f"steward: a person {decision.status} this call"
                    f"{f' ({decision.by})' if decision.by else ''}{said}"
                )
                refused.setdefault(meta["run_id"], []).append((call.tool_name, meta["call_id"]))
            results.metadata[call.tool_call_id] = {META_KEY: meta}
        for run_id, calls in refused.items():
            await self._record_refusals(run_id, calls)
        return results

    async def _record_refusals(self, run_id: str, calls: list[tuple[str, str]]) -> None:
        """Pydantic AI never calls a tool it answers with ToolDenied: record the refusal
        on the steward run here (the call ends denied, the run stops waiting). The tools
        are bound decide-only and nothing can run: the approval is already refused."""
        names = {name for name, _ in calls}
        tools = [steward.external_tool(n, None, parameters={"type": "object"}) for n in names]
        run = await self.steward.attach(run_id, tools=tools)
        for _, call_id in calls:
            await run.resume(call_id, execute=False)

    async def run(
        self,
        agent: Agent[Any, Any],
        prompt: str | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline for each decision
        **kwargs: Any,
    ) -> AgentRunResult[Any]:
        """`agent.run(prompt, **kwargs)`, resumed after each review with the person's
        decisions (`decisions`) until the run ends. For a program that may restart while
        a person decides, run the agent yourself and keep `result.all_messages()` and
        `result.output` (the `DeferredToolRequests`) instead: see the README."""
        output_type = kwargs.pop("output_type", agent.output_type)
        types = list(output_type) if isinstance(output_type, Sequence) else [output_type]
        if DeferredToolRequests not in types:
            types.append(DeferredToolRequests)
        result: AgentRunResult[Any] = await agent.run(prompt, output_type=types, **kwargs)
        kwargs.pop("message_history", None)
        while isinstance(result.output, DeferredToolRequests) and not result.output.calls:
            answers = await self.decisions(result.output, timeout=timeout)
            result = await agent.run(
                message_history=result.all_messages(), deferred_tool_results=answers,
                output_type=types, **kwargs,
            )  # fmt: skip
        return result
