"""Run the tool: circuit breaker, write-ahead intent, timeout, retries, result scan.

A side-effecting call's intent (ToolStarted) is durable before the tool runs. If the
journal later shows an intent with no result, the process died mid-call: a keyed or
idempotent tool is run again with the same key (its downstream deduplicates); any other
write is reported `unknown` and never repeated.

A call cut off at its timeout is recorded for what it may have done (`on_timeout`):
a coroutine tool is cancelled (`cancelled`: it runs no more); a synchronous tool's thread
cannot be stopped (`left_running`: it may still run, and write); a call that found all of
its agent's tool workers busy is withdrawn unstarted (`not_started`). A write cut off
after it reached its tool is outcome unknown, never failed, unless the tool is declared
`abandon_on_timeout`. An attempt that may still run is never retried (a second one beside
it would hold a second worker and, for a write, could act twice): a keyed, idempotent or
read call is retried after a timeout only when its attempt was cancelled. A call withdrawn
unstarted is not retried either: the agent's workers are all held.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from steward.core.backoff import backoff_delay
from steward.core.breaker import CircuitBreakers
from steward.core.decision import Verdict, deny
from steward.core.errors import ToolExecutionError
from steward.core.events import (
    BreakerTripped,
    ResultScanned,
    RunEnding,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.core.faults import crashpoint
from steward.core.lifecycle import is_shutdown
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome, CallStatus, EndsRun, ToolWaits
from steward.gate.stages.scan import DEFAULT_SCANNERS, scan_result
from steward.gate.workers import ToolWorkers
from steward.security.scanners import FindingAction, Scanner, TextSource
from steward.tools.base import Effect, Tool, ToolContext

_REJECTIONS = (LookupError, ValueError, TypeError, PermissionError)
log = logging.getLogger("steward.gate")

# How a call cut off at its timeout ended (ToolFailed.on_timeout)
CANCELLED = "cancelled"  # a coroutine tool, cancelled: it runs no more
LEFT_RUNNING = "left_running"  # a thread cannot be stopped: it may still run, and write
NOT_STARTED = "not_started"  # no worker of the agent was free: the tool never ran


@dataclass(slots=True)
class BreakerStage:
    breakers: CircuitBreakers
    name: str = "breaker"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        if not self.breakers.admit(cx.call.name, time.monotonic()):
            return cx.stop(
                self.name,
                deny("breaker.open", f"'{cx.call.name}' is failing; its circuit is open", risk=0.5),
            )
        verdict: bool | None = None  # none (a rejection, a cancel) frees a half-open trial
        try:
            outcome = await proceed(cx)
            # A tool refusing bad arguments is healthy, and so is a call that ends its run by
            # design (a delegation refused at the hop limit): only real failures count.
            if outcome.status is CallStatus.EXECUTED or (
                outcome.status is CallStatus.FAILED
                and outcome.error_code != "tool.rejected"
                and outcome.ending is None
            ):
                verdict = outcome.status is CallStatus.EXECUTED
            return outcome
        finally:
            if self.breakers.record(cx.call.name, verdict, time.monotonic()) == "opened":
                cx.scope.emit(
                    BreakerTripped(cx.call.name, self.breakers.threshold, self.breakers.cooldown)
                )


@dataclass(slots=True)
class _Flight:
    """How far a call got, for the record when it is cut off."""

    attempt: int = 1
    invoked: bool = False  # handed to the tool at least once
    job: Future[Any] | None = None  # the current attempt's thread job (a synchronous tool)

    def cut_off(self) -> str:
        """How the current attempt ended when its timeout expired."""
        if self.job is None:
            return CANCELLED
        return NOT_STARTED if self.job.cancelled() else LEFT_RUNNING


def _report_late(
    key: str, tool: str, timeout: float, since: float
) -> Callable[[Future[Any]], None]:
    """Log when a thread left running past its timeout ends, for whoever reconciles it."""

    def ended(job: Future[Any]) -> None:
        how = "failed" if job.exception() is not None else "returned"
        log.warning(
            "tool %s (call %s) %s %.1fs after its %gs timeout; that result is not recorded",
            tool, key, how, time.perf_counter() - since - timeout, timeout,
        )  # fmt: skip

    return ended


@dataclass(slots=True)
class ExecuteStage:
    scanners: Sequence[Scanner] = field(default_factory=lambda: DEFAULT_SCANNERS)
    name: str = "execute"
    # this gate's agent's own threads for synchronous tools, made at the first call
    workers: ToolWorkers | None = None

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        del proceed  # innermost stage
        tool = cx.tool
        assert tool is not None  # the policy stage denies unbound tools
        side_effect = tool.effect is Effect.WRITE
        record = cx.scope.recorded_call(cx.key) if side_effect else None
        if record is not None and record.started and not tool.retry_safe:
            return self._fail(
                cx,
                "tool.outcome_unknown",
                "the process stopped while this call ran; it may or may not have "
                "taken effect, and it is not keyed, so it is not repeated",
                0,
                unknown=True,
            )
        begun = time.perf_counter()
        flight = _Flight()
        try:
            return await self._attempts(cx, tool, flight, begun)
        except asyncio.CancelledError as exc:
            if is_shutdown(exc):  # the process stops; a resume settles this call as after a crash
                raise
            # The run's task was cancelled. A write that was handed to its tool may or may
            # not have taken effect (a tool in a thread even runs on): its outcome is
            # recorded unknown, never failed, so nobody repeats it blindly.
            unknown = side_effect and flight.invoked
            message = "the run was cancelled " + (
                "while this call ran; it may or may not have taken effect"
                if unknown
                else "before this call completed"
            )
            self._fail(cx, "tool.cancelled", message, flight.attempt, unknown=unknown, since=begun)
            raise

    async def _attempts(
        self, cx: CallContext, tool: Tool, flight: _Flight, begun: float
    ) -> CallOutcome:
        limits = cx.policy.spec.limits
        side_effect = tool.effect is Effect.WRITE
        timeout = tool.timeout or limits.tool_timeout_seconds
        attempts = 1 + (limits.max_retries if tool.retry_safe else 0)
        code, message = "tool.failed", ""
        for attempt in range(1, attempts + 1):
            flight.attempt = attempt
            if side_effect:
                cx.scope.emit(ToolStarted(cx.key, tool.name, attempt))
                await cx.scope.durable()  # write-ahead: the intent is on disk first
            crashpoint("tool.before")
            started = time.perf_counter()
            context = (
                ToolContext(cx.scope.run_id, cx.call.id, cx.key, attempt)
                if tool.context_param
                else None
            )
            cut = ""  # how this attempt ended if its timeout expired
            reached = False  # the tool says it was reached and may have acted
            try:
                async with asyncio.timeout(timeout):
                    result = await self._invoke(cx, tool, context, flight)
            except ToolWaits as exc:  # waits on decisions elsewhere: no result yet
                return CallOutcome(
                    cx.call, cx.key, CallStatus.WAITING, cx.decision or deny("gate.error", ""),
                    error_code="approval.pending", error=str(exc),
                    approval_id=exc.approval_ids[0] if exc.approval_ids else "",
                    waiting_on=exc.approval_ids,
                )  # fmt: skip
            except EndsRun as exc:  # the call ends its run: recorded with its ending
                latency_ms = (time.perf_counter() - started) * 1000
                if exc.code:
                    return failed(cx, exc.code, exc.message or exc.ending.reason, attempt,
                                  latency_ms=latency_ms, ending=exc.ending)  # fmt: skip
                return succeeded(cx, tool, exc.result, latency_ms, attempt, self.scanners,
                                 ending=exc.ending)  # fmt: skip
            except TimeoutError:
                cut, code, message = self._timed_out(cx, flight, timeout, started)
                retryable = cut == CANCELLED  # never beside an attempt that may still run
            except ToolExecutionError as exc:
                code, message, retryable = exc.code, exc.message, exc.retryable
                reached = exc.outcome_unknown
            except _REJECTIONS as exc:  # the tool refused these arguments: retrying cannot help
                code, message, retryable = "tool.rejected", f"{type(exc).__name__}: {exc}", False
            except Exception as exc:
                code, message, retryable = "tool.error", f"{type(exc).__name__}: {exc}", True
            else:
                crashpoint("tool.after")
                return self._succeeded(
                    cx, tool, result, (time.perf_counter() - started) * 1000, attempt
                )
            if attempt < attempts and retryable:
                await asyncio.sleep(backoff_delay(attempt))
                continue
            # a write cut off after it reached its tool may yet take effect
            unknown = side_effect and (cut in (CANCELLED, LEFT_RUNNING) or reached)
            return self._fail(
                cx, code, message, attempt,
                unknown=unknown and not tool.abandon_on_timeout, since=begun, on_timeout=cut,
            )  # fmt: skip
        return self._fail(
            cx, code, message, attempts, since=begun
        )  # pragma: no cover - loop always returns

    async def _invoke(
        self, cx: CallContext, tool: Tool, context: ToolContext | None, flight: _Flight
    ) -> Any:
        kwargs = tool.bind(cx.call.arguments, context)
        if tool.is_async:
            flight.invoked, flight.job = True, None
            return await tool.function(**kwargs)
        if self.workers is None:
            self.workers = ToolWorkers(cx.policy.spec.limits.tool_workers, cx.policy.spec.name)
        in_context = partial(contextvars.copy_context().run, tool.function)  # as to_thread does
        job = flight.job = self.workers.submit(in_context, kwargs)
        try:
            return await asyncio.wrap_future(job)
        finally:
            # cut off (timeout, cancelled run): a job still queued is withdrawn and never runs
            flight.invoked = not job.cancel() or flight.invoked

    def _timed_out(
        self, cx: CallContext, flight: _Flight, timeout: float, since: float
    ) -> tuple[str, str, str]:
        """How an attempt cut off at its timeout ended: (on_timeout, code, message)."""
        cut = flight.cut_off()
        late = f"no result within {timeout:g}s; "
        if cut == NOT_STARTED:
            size = self.workers.size if self.workers is not None else 0
            busy = f"(limits.tool_workers={size}, all busy); the call never reached the tool"
            return cut, "tool.no_worker", f"no tool worker was free within {timeout:g}s {busy}"
        if cut == CANCELLED:
            return cut, "tool.timeout", late + "the tool was cancelled"
        assert flight.job is not None
        flight.job.add_done_callback(_report_late(cx.key, cx.call.name, timeout, since))
        running = "its thread cannot be stopped and may still be running, so it is not retried"
        return cut, "tool.timeout", late + running

    def _succeeded(
        self, cx: CallContext, tool: Tool, result: Any, latency_ms: float, attempt: int
    ) -> CallOutcome:
        return succeeded(cx, tool, result, latency_ms, attempt, self.scanners)

    def _fail(
        self,
        cx: CallContext,
        code: str,
        message: str,
        attempts: int,
        *,
        unknown: bool = False,
        since: float = 0.0,
        on_timeout: str = "",
    ) -> CallOutcome:
        latency_ms = (time.perf_counter() - since) * 1000 if since else 0.0
        return failed(cx, code, message, attempts, unknown=unknown, latency_ms=latency_ms,
                      on_timeout=on_timeout)  # fmt: skip


def succeeded(
    cx: CallContext,
    tool: Tool,
    result: Any,
    latency_ms: float,
    attempt: int,
    scanners: Sequence[Scanner],
    *,
    ending: RunEnding | None = None,
) -> CallOutcome:
    """Record a call's result, scanned (PII, injection, record count) as the agent will
    see it: the execute stage's, and a result a decide-only caller reports (release.py)."""
    access = cx.policy.spec.data_access
    source = TextSource.RETRIEVED_DOCUMENTS if tool.retrieves else TextSource.TOOL_RESULTS
    action = cx.policy.spec.injection.action_for(source) or FindingAction.QUARANTINE
    shown, scanned, findings, details = scan_result(
        result,
        scanners,
        allow_pii=access.allow_pii,
        max_records=access.max_records_per_query,
        injection=action,
    )
    decision = cx.decision
    if scanned is not None:
        cx.scope.emit(
            ResultScanned(cx.key, tool.name, scanned, findings, details,
                          source=source.value, action=action.value, step=cx.step)
        )  # fmt: skip
        decision = scanned
    cx.scope.emit(
        ToolSucceeded(cx.key, tool.name, shown, latency_ms, attempt, tool.cost_usd, ending)
    )
    assert decision is not None
    return CallOutcome(cx.call, cx.key, CallStatus.EXECUTED, decision, result=shown, ending=ending)


def failed(
    cx: CallContext,
    code: str,
    message: str,
    attempts: int,
    *,
    unknown: bool = False,
    latency_ms: float = 0.0,
    on_timeout: str = "",
    ending: RunEnding | None = None,
) -> CallOutcome:
    """Record a call's failure (`unknown`: a write that may or may not have taken effect;
    `ending`: the call ends its run so)."""
    if unknown and on_timeout:
        message += "; the write may or may not take effect"
    cx.scope.emit(
        ToolFailed(
            cx.key, cx.call.name, code, message, attempts, unknown, latency_ms, on_timeout, ending
        )
    )
    decision = cx.decision if cx.decision is not None else deny(code, message)
    status = CallStatus.UNKNOWN if unknown else CallStatus.FAILED
    if decision.verdict is Verdict.DENY:
        status = CallStatus.DENIED
    return CallOutcome(
        cx.call, cx.key, status, decision, error_code=code, error=message, ending=ending
    )
