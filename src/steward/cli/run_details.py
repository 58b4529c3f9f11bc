"""One line per journal event for `steward runs show`, dispatched by event type (a
registry: core/dispatch.py). Its own module so that `steward --help` never imports it."""

from __future__ import annotations

from steward.cli.render import compact
from steward.core import events as ev
from steward.core.dispatch import EventHandlers
from steward.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalUsed,
    BreakerTripped,
    Event,
    GateDecided,
    ModelBreakerClosed,
    ModelBreakerOpened,
    ModelFailed,
    ModelResponded,
    ResultScanned,
    RunEnding,
    RunFinished,
    RunResumed,
    RunStarted,
    RunWaiting,
    ToolCallProposed,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)


def status_word(verdict: str) -> str:
    colours = {"allow": "green", "review": "yellow", "deny": "red", "transform": "cyan"}
    return f"[{colours.get(verdict, 'white')}]{verdict}[/]"


def detail(event: Event) -> str:
    """One line for `steward runs show`: what the event says, or ''."""
    return _details(None, event) or ""


# One line per event in `steward runs show`; the types a run's journal does not hold,
# or that add nothing to the event's name, print no detail.
_details: EventHandlers[None, [], str] = EventHandlers("cli.runs")
_details.ignore(
    ev.RunQueued, ev.RateSlotTaken, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.DriftAlarmed,
    ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


@_details.on(RunStarted)
def _run_started(_: None, event: RunStarted) -> str:
    if event.parent_run_id:  # a specialist's run, started by a delegation
        return (
            f"agent {event.agent}, delegated by run {event.parent_run_id} "
            f"(hop {event.hop} of tree {event.root_run_id})"
        )
    return f"agent {event.agent}"


@_details.on(ModelResponded)
def _model_responded(_: None, event: ModelResponded) -> str:
    if event.response.tool_calls:
        return f"step {event.step}: proposes " + ", ".join(
            c.name for c in event.response.tool_calls
        )
    if event.response.cut_off:
        return f"step {event.step}: cut off (finish_reason {event.response.finish_reason})"
    return f"step {event.step}: answers (confidence {event.response.confidence})"


@_details.on(ModelFailed)
def _model_failed(_: None, event: ModelFailed) -> str:
    return f"step {event.step}: {event.model} attempt {event.attempt} failed [{event.code}] {event.message}"


@_details.on(ModelBreakerOpened)
def _model_breaker_opened(_: None, event: ModelBreakerOpened) -> str:
    return f"{event.endpoint} circuit opened after {event.failures} failures"


@_details.on(ModelBreakerClosed)
def _model_breaker_closed(_: None, event: ModelBreakerClosed) -> str:
    return f"{event.endpoint} circuit closed"


@_details.on(ToolCallProposed)
def _tool_call_proposed(_: None, event: ToolCallProposed) -> str:
    sources = ", ".join(f"{k}←{v.value}" for k, v in event.sources.items())
    return f"{event.call.name} {compact(event.call.arguments, 60)}" + (
        f" [{sources}]" if sources else ""
    )


@_details.on(GateDecided)
def _gate_decided(_: None, event: GateDecided) -> str:
    reasons = "; ".join(f"{r.code}: {r.message}" for r in event.decision.reasons)
    return f"{event.stage}: {status_word(event.decision.verdict.value)} {event.tool} — {reasons}"


@_details.on(ApprovalRequested)
def _approval_requested(_: None, event: ApprovalRequested) -> str:
    return f"approval {event.approval_id} requested for {event.tool}"


@_details.on(ApprovalDecided)
def _approval_decided(_: None, event: ApprovalDecided) -> str:
    return f"approval {event.approval_id} {event.outcome} by {event.by} {event.comment}".strip()


@_details.on(ApprovalUsed)
def _approval_used(_: None, event: ApprovalUsed) -> str:
    return f"approval {event.approval_id} used"


@_details.on(ToolStarted)
def _tool_started(_: None, event: ToolStarted) -> str:
    return f"{event.tool} started (attempt {event.attempt}, key {event.key})"


@_details.on(ToolSucceeded)
def _tool_succeeded(_: None, event: ToolSucceeded) -> str:
    said = f"{event.tool} ok in {event.latency_ms:.1f}ms: {compact(event.result, 70)}"
    return said + _ends(event.ending)


@_details.on(ToolFailed)
def _tool_failed(_: None, event: ToolFailed) -> str:
    return f"{event.tool} failed [{event.code}] {event.message}" + _ends(event.ending)


def _ends(ending: RunEnding | None) -> str:
    """A call that ends its run (a handoff, a tree too deep or looping)."""
    return "" if ending is None else f"; it ends the run {ending.status.value}"


@_details.on(ResultScanned)
def _result_scanned(_: None, event: ResultScanned) -> str:
    return f"{event.tool} {event.source} scanned: {', '.join(event.findings)} ({event.action})"


@_details.on(BreakerTripped)
def _breaker_tripped(_: None, event: BreakerTripped) -> str:
    return f"{event.tool} circuit opened after {event.failures} failures"


@_details.on(RunWaiting)
def _run_waiting(_: None, event: RunWaiting) -> str:
    return event.reason


@_details.on(RunResumed)
def _run_resumed(_: None, event: RunResumed) -> str:
    return event.reason


@_details.on(RunFinished)
def _run_finished(_: None, event: RunFinished) -> str:
    return f"{event.status.value} {event.reason_code}".strip()
