"""One run of an agent whose loop is someone else's: every proposed call goes through
the gate (the same one the built-in runner uses), every model call of the framework is
priced and budgeted, and the run finishes with its answer on the audit chain."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from steward.core.decision import Decision, Verdict, deny
from steward.core.errors import NotFoundError, StewardError
from steward.core.events import RunFinished, RunResumed, RunStatus, RunWaiting
from steward.core.messages import Message, ModelResponse, ToolCall, Usage
from steward.embed.external import is_decide_only
from steward.embed.outcomes import (
    Allowed,
    Denied,
    Executed,
    Failed,
    Outcome,
    Reason,
    Waiting,
    reasons_of,
)
from steward.embed.outcomes import (
    Verdict as FacadeVerdict,
)
from steward.engines.embedded import EmbeddedExecutor
from steward.gate.context import CallContext
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.pipeline import Gate, decide_only_stages
from steward.gate.stages.release import Report, report_result
from steward.runtime.agent import AgentRuntime
from steward.runtime.runs import AgentDisabled, final_answer
from steward.security.provenance import said_words, trace_sources
from steward.store.approvals import get_approval, get_approval_view
from steward.store.cancel import CANCELLED_CODE, cancellation

if TYPE_CHECKING:
    from steward.embed.steward import Steward


class ModelCall:
    """One model call of the framework's, inside `Run.model_call`: report its usage with
    `settle`. A call left unsettled is charged its whole reservation (the bound), marked
    estimated: a forgotten report never makes a call free."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage: Usage | None = None
        self.cost_usd: float | None = None

    def settle(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        cost_usd: float | None = None,
    ) -> None:
        """The usage the provider reported. `cost_usd` is used only for a model the
        price table does not know (a known model is priced by the table)."""
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                            ("cached_input_tokens", cached_input_tokens),
                            ("cache_write_tokens", cache_write_tokens)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        self.usage = Usage(input_tokens, output_tokens, cached_input_tokens, cost_usd or 0.0,
                           cache_write_tokens)  # fmt: skip


@dataclass(slots=True)
class _Slot:
    """Where one call id sits in the run: its step (part of its idempotency key)."""

    step: int
    key: str


class Run:
    """A run of an external agent. Get one from `Steward.start_run` or `Steward.attach`."""

    def __init__(
        self,
        steward: Steward,
        agent: AgentRuntime,
        executor: EmbeddedExecutor,
        *,
        typed: tuple[str, ...] = (),
        waiting: bool = False,
    ) -> None:
        self._steward = steward
        self._agent = agent
        self._executor = executor
        config = steward._config
        self._gate = agent.gate(config)
        listed = {n: t for n, t in agent.tools.items() if n in agent.loaded.spec.tools}
        self._decide_gate = Gate(agent.policy, listed, config, decide_only_stages(config))
        # the user's words before masking, read once: provenance only, never stored
        self._typed = said_words(typed)
        self._messages: list[Message] = []
        started = executor.history.started
        if agent.loaded.spec.prompt:
            self._messages.append(Message("system", agent.loaded.spec.prompt))
        if started is not None:
            self._messages.append(Message("user", started.input))
        self._slots: dict[str, _Slot] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._steps = 0
        self._waiting = waiting
        self._index()

    # -- what the run is -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._executor.run_id

    @property
    def agent(self) -> str:
        return self._agent.name

    @property
    def agent_version(self) -> str:
        return self._agent.version

    @property
    def steps(self) -> int:
        """Calls and model calls recorded in this run so far."""
        return self._steps

    @property
    def finished(self) -> bool:
        return self._executor.history.finished is not None

    def _index(self) -> None:
        """Call ids and steps already on record (a run attached after a restart)."""
        prefix = f"{self.id}:"
        steps = set(self._executor.history.models)
        for key in self._executor.history.calls:
            step, _, call_id = key.removeprefix(prefix).partition(":")
            if step.isdigit():
                self._slots[call_id] = _Slot(int(step), key)
                steps.add(int(step))
        self._steps = max(steps) + 1 if steps else 0

    def _next_step(self) -> int:
        step = self._steps
        self._steps += 1
        return step

    # -- tool calls ----------------------------------------------------------------------

    async def call(
        self, tool: str, arguments: dict[str, Any], *, call_id: str | None = None
    ) -> Outcome:
        """Govern one proposed call and, if allowed, run it (at most once per call id in
        this run, across restarts): Executed | Denied | Waiting | Failed."""
        outcome = await self._govern(tool, arguments, call_id, execute=True)
        assert not isinstance(outcome, Allowed)
        return outcome

    async def decide(
        self, tool: str, arguments: dict[str, Any], *, call_id: str | None = None
    ) -> FacadeVerdict:
        """Decide-only: may the framework run this call itself? Allowed (then run it and
        `record_result`) | Denied | Waiting; a call id whose result is on record answers
        Executed / Failed: a call is never allowed twice."""
        return await self._govern(tool, arguments, call_id, execute=False)

    async def resume(self, call_id: str, *, execute: bool = True) -> FacadeVerdict:
        """Go on with a call that waited for a person: run the approved (perhaps edited)
        arguments exactly once -> Executed; Denied when rejected or expired; Waiting while
        still pending. `execute=False`: Allowed instead of running it."""
        slot = self._slots.get(call_id)
        proposed = self._executor.history.proposed(slot.key) if slot is not None else None
        if proposed is None or slot is None:
            raise NotFoundError(f"run {self.id} has no call {call_id!r} to resume")
        still = await self._still_pending(call_id, proposed.name, slot.key)
        if still is not None:  # nobody decided yet: the run goes on waiting
            return still
        if self._waiting and not self.finished:
            self._waiting = False
            self._executor.emit(RunResumed(f"call {call_id} resumed by its program", self.agent))
        return await self._govern(proposed.name, proposed.arguments, call_id, execute=execute)

    async def record_result(
        self,
        call_id: str,
        result: Any = None,
        *,
        error: BaseException | str | None = None,
        unknown: bool = False,
        latency_s: float = 0.0,
    ) -> Executed | Failed:
        """Report what the framework's run of an Allowed call gave: its result, or the
        `error` it raised (`unknown=True`: you cannot tell whether the write took
        effect). Recorded once; reporting again answers what is on record."""
        slot = self._slots.get(call_id)
        if slot is None:
            raise NotFoundError(f"run {self.id} has no call {call_id!r}")
        if error is None and not unknown:
            try:  # the journal records JSON: say so here, not as a failure after the fact
                msgspec.json.encode(result)
            except (TypeError, ValueError, OverflowError) as exc:
                raise TypeError(
                    f"the result of call {call_id} is not JSON ({exc}): record a dict, list, "
                    "str, number, bool or None (e.g. model.model_dump(mode='json'))"
                ) from None
        async with self._lock(call_id):
            record = self._executor.recorded_call(slot.key)
            proposed = self._executor.history.proposed(slot.key)
            assert record is not None and proposed is not None
            if record.outcome is not None:
                done = self._value(record.outcome)
                if isinstance(done, Executed | Failed):
                    return done
                raise StewardError(
                    f"call {call_id} was {done.status}, not allowed: there is no result to record",
                    code="call.not_released",
                )
            if not record.started:
                raise StewardError(
                    f"call {call_id} was not allowed (yet): decide() it first",
                    code="call.not_released",
                )
            tool = self._agent.tools.get(proposed.name)
            arguments = await self._ran_with(record.approval_id, proposed.arguments)
            call = ToolCall(call_id, proposed.name, arguments)
            cx = CallContext(self._executor, self._agent.policy, call, slot.key, slot.step, tool)
            cx.decision = Decision(Verdict.ALLOW)
            if error is not None or unknown:
                said = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else (
                    error or "the framework cannot tell whether the call took effect")  # fmt: skip
                report = Report(error=said, latency_ms=latency_s * 1000, unknown=unknown)
            else:
                report = Report(result=result, latency_ms=latency_s * 1000)
            config = self._steward._config
            outcome = report_result(cx, report, config.breakers, config.scanners)
            await self._executor.durable()
            value = self._value(outcome)
            assert isinstance(value, Executed | Failed)
            if isinstance(value, Executed):
                self._messages.append(outcome.to_message())
            return value

    async def pending(self) -> list[Waiting]:
        """The run's calls still waiting for a person (pending, unexpired approvals), in
        the order they were proposed: what a restarted program waits on and resumes."""
        found: list[Waiting] = []
        for call_id, slot in sorted(self._slots.items(), key=lambda item: item[1].step):
            proposed = self._executor.history.proposed(slot.key)
            if proposed is not None:
                still = await self._still_pending(call_id, proposed.name, slot.key)
                if still is not None:
                    found.append(still)
        return found

    def _lock(self, call_id: str) -> asyncio.Lock:
        lock = self._locks.get(call_id)
        if lock is None:
            lock = self._locks[call_id] = asyncio.Lock()
        return lock

    async def _govern(
        self, tool: str, arguments: dict[str, Any], call_id: str | None, *, execute: bool
    ) -> FacadeVerdict:
        if not isinstance(tool, str) or not tool:
            raise TypeError("tool must be the tool's name (a non-empty str)")
        if not isinstance(arguments, dict):
            raise TypeError(
                f"arguments of {tool} must be a dict (a JSON object), not {type(arguments).__name__}"
            )
        bound = self._agent.tools.get(tool)
        if execute and bound is not None and is_decide_only(bound):
            raise TypeError(f"tool {tool} was declared without a function: use Run.decide() for it")
        call_id = call_id or f"call_{uuid.uuid4().hex[:16]}"
        closed = self._closed(call_id, tool)
        if closed is not None:
            return closed
        async with self._lock(call_id):
            slot = self._slots.get(call_id)
            if slot is None:
                step = self._next_step()
                slot = self._slots[call_id] = _Slot(step, f"{self.id}:{step}:{call_id}")
            else:
                proposed = self._executor.history.proposed(slot.key)
                if proposed is not None and (proposed.name, proposed.arguments) != (
                    tool,
                    arguments,
                ):
                    return _denied(
                        call_id, tool,
                        deny("call.id_reused", f"call id {call_id!r} was used in this run for "
                             f"another call ({proposed.name}); a call id names one call"),
                    )  # fmt: skip
                still = await self._still_pending(call_id, tool, slot.key)
                if still is not None:
                    return still
            call = ToolCall(call_id, tool, arguments)
            sources = trace_sources(arguments, self._messages, said=self._typed)
            gate = self._gate if execute else self._decide_gate
            outcome = await gate.process(self._executor, call, slot.step, sources)
            if outcome.status is CallStatus.WAITING and not self._waiting:
                self._waiting = True
                self._executor.emit(RunWaiting(f"waiting for approval {outcome.approval_id}",
                                               (outcome.approval_id,)))  # fmt: skip
            await self._executor.durable()
            value = self._value(outcome)
            if outcome.replayed and isinstance(value, Executed):
                record = self._executor.recorded_call(slot.key)
                approval = record.approval_id if record is not None else ""
                ran = await self._ran_with(approval, value.arguments)
                value = Executed(value.call_id, value.tool, ran, value.result)
            if outcome.status is CallStatus.EXECUTED and not outcome.replayed:
                self._messages.append(outcome.to_message())
            return value

    def _closed(self, call_id: str, tool: str) -> Denied | None:
        """A finished or cancelled run takes no more calls."""
        done = self._finished_elsewhere()
        if done is None:
            return None
        if done.status is RunStatus.CANCELLED:
            why = f"run {self.id} was cancelled: {done.reason}"
            return _denied(call_id, tool, deny(CANCELLED_CODE, why))
        return _denied(call_id, tool, deny("run.finished", f"run {self.id} already {done.status}"))

    def _finished_elsewhere(self, *, now: bool = False) -> RunFinished | None:
        """How the run finished, if it did: here, or cancelled from outside (the store is
        asked at most every half second, or at once when `now`)."""
        done = self._executor.history.finished
        if done is not None:
            return done
        why = cancellation(self._steward.db, self.id) if now else self._executor.cancelled()
        if why is None:
            return None
        ended = RunFinished(RunStatus.CANCELLED, reason_code=CANCELLED_CODE, reason=why)
        self._executor.history.apply(ended)  # on record already: known here from now on
        return ended

    async def _still_pending(self, call_id: str, tool: str, key: str) -> Waiting | None:
        """A call waiting on a pending, unexpired approval answers Waiting from the
        store, without another pass through the gate (no rate slot, no new events)."""
        record = self._executor.recorded_call(key)
        if record is None or record.outcome is not None or not record.approval_id:
            return None
        try:
            row = await asyncio.to_thread(get_approval, self._steward.db, record.approval_id)
        except NotFoundError:
            return None  # the gate denies it (approval.missing)
        if row.status != "pending" or row.expires_at <= time.time():
            return None
        return Waiting(call_id, tool, row.id, row.reason)

    async def _ran_with(self, approval_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments a call ran with: a person's edits, when its approval has them."""
        if not approval_id:
            return arguments
        view = await asyncio.to_thread(get_approval_view, self._steward.db, approval_id)
        if view is not None and view.status == "approved" and view.decided_arguments is not None:
            return view.decided_arguments
        return arguments

    def _value(self, outcome: CallOutcome) -> FacadeVerdict:
        call = outcome.call
        if outcome.status is CallStatus.EXECUTED:
            return Executed(call.id, call.name, dict(call.arguments), outcome.result)
        if outcome.status is CallStatus.RELEASED:
            return Allowed(call.id, call.name, dict(call.arguments))
        if outcome.status is CallStatus.WAITING:
            reason = outcome.decision.reasons[0].message if outcome.decision.reasons else ""
            return Waiting(call.id, call.name, outcome.approval_id, reason or outcome.error)
        if outcome.status is CallStatus.DENIED:
            decision = outcome.decision
            if decision.verdict is not Verdict.DENY or not decision.reasons:
                decision = deny(outcome.error_code or "denied", outcome.error or "denied")
            return _denied(call.id, call.name, decision, outcome.error)
        record = self._executor.recorded_call(outcome.key)
        return Failed(
            call.id, call.name, outcome.error,
            on_timeout=record.on_timeout if record is not None else "",
            code=outcome.error_code or "tool.failed",
            unknown=outcome.status is CallStatus.UNKNOWN,
        )  # fmt: skip

    # -- the framework's model calls ---------------------------------------------------

    @contextlib.asynccontextmanager
    async def model_call(
        self,
        model: str,
        *,
        max_output_tokens: int | None = None,
        max_input_tokens: int | None = None,
    ) -> AsyncIterator[ModelCall]:
        """Around one LLM call of the framework's: reserves its upper-bound cost first
        (raises BudgetExceeded when the budget cannot cover it: make no call then),
        settles the priced actual after, and records it (cost ledger, traces, metrics,
        the run's steps). The bound: `max_output_tokens` (default: the spec's
        limits.max_output_tokens) and `max_input_tokens` (default: the model's context
        window in the price table)."""
        self._check_open()
        if not self._steward._states(self._agent.name).enabled:  # the gate's cached switch
            raise AgentDisabled(
                f"agent {self._agent.name} is disabled: no model calls", code="agent.disabled"
            )
        limit = max_output_tokens or self._agent.loaded.spec.limits.max_output_tokens
        models = self._steward._models
        hold = await models.spend.reserve_model(
            self._agent, self.id, model, limit, max_input_tokens, self._executor.tags
        )
        call = ModelCall(model)
        began = time.perf_counter()
        try:
            yield call
        except BaseException:
            # the call failed: what it reported, if anything, is charged; else nothing
            response = _response(model, call.usage) if call.usage is not None else None
            await asyncio.shield(self._model_done(hold, response, began))
            raise
        usage = call.usage
        if usage is None:  # never settled: charged the whole bound, marked estimated
            inputs = max_input_tokens
            if inputs is None:
                rate = models.spend.prices.rate(model)
                inputs = rate.context if rate is not None and rate.context else 0
            usage = Usage(input_tokens=inputs, output_tokens=limit, estimated=True)
        await self._model_done(hold, _response(model, usage), began)

    async def record_model_call(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        latency_s: float = 0.0,
        cost_usd: float | None = None,
    ) -> None:
        """Record a model call already made (no reservation was possible before it; the
        budget still counts it). Prefer `model_call`, which reserves first."""
        self._check_open()
        call = ModelCall(model)
        call.settle(input_tokens=input_tokens, output_tokens=output_tokens,
                    cached_input_tokens=cached_input_tokens, cost_usd=cost_usd)  # fmt: skip
        assert call.usage is not None
        await self._model_done(None, _response(model, call.usage), time.perf_counter() - latency_s)

    async def _model_done(self, hold: Any, response: ModelResponse | None, began: float) -> None:
        step = self._next_step() if response is not None else -1
        await self._steward._models.record_external(
            self._agent, self._executor, step, hold, response, (time.perf_counter() - began) * 1000
        )
        await self._executor.durable()

    def _check_open(self) -> None:
        done = self._finished_elsewhere()
        if done is not None:
            raise StewardError(f"run {self.id} already {done.status}", code="run.finished")

    # -- the end ---------------------------------------------------------------------------

    async def finish(self, answer: str, confidence: float | None = None) -> str:
        """End the run with its answer: `succeeded`, or `escalated` when `confidence` is
        below the spec's escalation.confidence_below. Returns the status."""
        ending = final_answer(self._agent, confidence)
        return await self._end(ending.status, answer, confidence, ending.reason_code, ending.reason)

    async def fail(self, reason: str) -> str:
        return await self._end(RunStatus.FAILED, "", None, "run.failed", reason)

    async def escalate(self, reason: str, answer: str = "") -> str:
        return await self._end(RunStatus.ESCALATED, answer, None, "run.escalated", reason)

    async def _end(
        self, status: RunStatus, output: str, confidence: float | None, code: str, reason: str
    ) -> str:
        done = await asyncio.to_thread(self._finished_elsewhere, now=True)
        if done is not None:
            return done.status.value
        self._executor.emit(RunFinished(status, output, confidence, code, reason, self._steps))
        await self._executor.durable()
        finished = self._executor.history.finished
        assert finished is not None
        return finished.status.value


def _denied(call_id: str, tool: str, decision: Decision, message: str = "") -> Denied:
    reasons = reasons_of(decision) or (Reason(decision.primary_code, "denied"),)
    return Denied(call_id, tool, reasons, message or reasons[0].message)


def _response(model: str, usage: Usage) -> ModelResponse:
    return ModelResponse(model, usage=usage)
