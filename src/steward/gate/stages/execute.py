"""Run the tool: circuit breaker, write-ahead intent, timeout, retries, result scan.

A side-effecting call's intent (ToolStarted) is durable before the tool runs. If the
journal later shows an intent with no result, the process died mid-call: a keyed or
idempotent tool is run again with the same key (its downstream deduplicates); any other
write is reported `unknown` and never repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from steward.core.backoff import backoff_delay
from steward.core.breaker import CircuitBreakers
from steward.core.decision import Verdict, deny
from steward.core.errors import ToolExecutionError
from steward.core.events import (
    BreakerTripped,
    ResultScanned,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.core.faults import crashpoint
from steward.core.lifecycle import is_shutdown
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.stages.scan import DEFAULT_SCANNERS, scan_result
from steward.security.scanners import Scanner
from steward.tools.base import Effect, Tool, ToolContext

_REJECTIONS = (LookupError, ValueError, TypeError, PermissionError)


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
        outcome = await proceed(cx)
        # A tool refusing bad arguments is healthy; only real failures count toward opening.
        if outcome.status is CallStatus.EXECUTED or (
            outcome.status is CallStatus.FAILED and outcome.error_code != "tool.rejected"
        ):
            ok = outcome.status is CallStatus.EXECUTED
            if self.breakers.record(cx.call.name, ok, time.monotonic()):
                cx.scope.emit(
                    BreakerTripped(cx.call.name, self.breakers.threshold, self.breakers.cooldown)
                )
        return outcome


async def _invoke(tool: Tool, arguments: dict[str, Any], context: ToolContext | None) -> Any:
    kwargs = tool.bind(arguments, context)
    if tool.is_async:
        return await tool.function(**kwargs)
    return await asyncio.to_thread(tool.function, **kwargs)


@dataclass(slots=True)
class _Flight:
    """How far a call got, for the record when its run is cancelled mid-call."""

    attempt: int = 1
    invoked: bool = False  # handed to the tool at least once


@dataclass(slots=True)
class ExecuteStage:
    scanners: Sequence[Scanner] = field(default_factory=lambda: DEFAULT_SCANNERS)
    name: str = "execute"

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
            flight.invoked = True
            try:
                async with asyncio.timeout(timeout):
                    result = await _invoke(tool, cx.call.arguments, context)
            except TimeoutError:
                code, message, retryable = "tool.timeout", f"no result within {timeout:g}s", True
            except ToolExecutionError as exc:
                code, message, retryable = exc.code, exc.message, exc.retryable
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
            return self._fail(cx, code, message, attempt, since=begun)
        return self._fail(
            cx, code, message, attempts, since=begun
        )  # pragma: no cover - loop always returns

    def _succeeded(
        self, cx: CallContext, tool: Tool, result: Any, latency_ms: float, attempt: int
    ) -> CallOutcome:
        access = cx.policy.spec.data_access
        shown, transform, findings = scan_result(
            result,
            self.scanners,
            allow_pii=access.allow_pii,
            max_records=access.max_records_per_query,
        )
        decision = cx.decision
        if transform is not None:
            cx.scope.emit(ResultScanned(cx.key, tool.name, transform, findings))
            decision = transform
        cx.scope.emit(ToolSucceeded(cx.key, tool.name, shown, latency_ms, attempt, tool.cost_usd))
        assert decision is not None
        return CallOutcome(cx.call, cx.key, CallStatus.EXECUTED, decision, result=shown)

    def _fail(
        self,
        cx: CallContext,
        code: str,
        message: str,
        attempts: int,
        *,
        unknown: bool = False,
        since: float = 0.0,
    ) -> CallOutcome:
        latency_ms = (time.perf_counter() - since) * 1000 if since else 0.0
        cx.scope.emit(
            ToolFailed(cx.key, cx.call.name, code, message, attempts, unknown, latency_ms)
        )
        decision = cx.decision if cx.decision is not None else deny(code, message)
        status = CallStatus.UNKNOWN if unknown else CallStatus.FAILED
        if decision.verdict is Verdict.DENY:
            status = CallStatus.DENIED
        return CallOutcome(cx.call, cx.key, status, decision, error_code=code, error=message)
