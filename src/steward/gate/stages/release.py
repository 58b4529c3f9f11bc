"""Decide-only: the gate's last stage for a caller that runs the tool itself.

Some agent frameworks ask "may I?" and then call the tool on their own. For them the
gate runs every stage up to the execute stage (kill switch, validation, policy,
autonomy, rate limit, budget, approval, circuit breaker) and then, instead of invoking
the tool, releases the call: the write-ahead intent (ToolStarted) is made durable and
the call goes back to the caller with status `released`. The caller reports what the
tool did (`report_result`), which is scanned and recorded exactly as the execute
stage's own result is.

A call is released once. Asked again with no result on record, a call that is safe to
repeat (a read, an idempotent or keyed tool) is released again; any other is reported
outcome unknown: it may or may not have run, so it is never handed out twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from steward.core.breaker import CircuitBreakers
from steward.core.decision import Decision, Verdict
from steward.core.events import ToolStarted
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.stages.execute import failed, succeeded
from steward.gate.stages.scan import DEFAULT_SCANNERS
from steward.security.scanners import Scanner

OUTCOME_UNKNOWN = "tool.outcome_unknown"


@dataclass(slots=True)
class ReleaseStage:
    name: str = "release"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        del proceed  # innermost stage
        tool = cx.tool
        assert tool is not None  # the policy stage denies unbound tools
        record = cx.scope.recorded_call(cx.key)
        if record is not None and record.started and not tool.retry_safe:
            return CallOutcome(
                cx.call, cx.key, CallStatus.UNKNOWN,
                cx.decision if cx.decision is not None else Decision(Verdict.ALLOW),
                error_code=OUTCOME_UNKNOWN,
                error="this call was released to its caller before and no result was "
                "reported; it may or may not have run, so it is not released again",
            )  # fmt: skip
        cx.scope.emit(ToolStarted(cx.key, tool.name, 1))
        await cx.scope.durable()  # write-ahead: the intent is on disk before the caller runs it
        assert cx.decision is not None
        return CallOutcome(cx.call, cx.key, CallStatus.RELEASED, cx.decision)


@dataclass(slots=True)
class Report:
    """What the caller's run of a released tool gave: a result, or an error."""

    result: Any = None
    error: str = ""
    code: str = "tool.error"
    latency_ms: float = 0.0
    unknown: bool = False  # the caller cannot tell whether its write took effect


def report_result(
    cx: CallContext,
    report: Report,
    breakers: CircuitBreakers,
    scanners: Sequence[Scanner] = DEFAULT_SCANNERS,
) -> CallOutcome:
    """Record what a released call did, as the execute stage records its own calls."""
    tool = cx.tool
    assert tool is not None
    ok = not report.error and not report.unknown
    breakers.record(tool.name, ok, time.monotonic())
    if ok:
        return succeeded(cx, tool, report.result, report.latency_ms, 1, scanners)
    return failed(
        cx, report.code, report.error or "the outcome is unknown", 1,
        unknown=report.unknown, latency_ms=report.latency_ms,
    )  # fmt: skip
