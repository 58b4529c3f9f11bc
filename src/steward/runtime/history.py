"""A run's history indexed for replay: model responses by step, call records by key.

The same `apply` folds events as they are emitted live and as they are read back from
the journal on resume, so live state and replayed state cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steward.core import events as ev
from steward.core.decision import Decision, Verdict
from steward.core.dispatch import EventHandlers
from steward.core.events import Event
from steward.core.messages import ModelResponse, ToolCall
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.scope import CallRecord, RunFindings, StandingFinding


@dataclass(slots=True)
class RunHistory:
    queued: ev.RunQueued | None = None
    started: ev.RunStarted | None = None
    finished: ev.RunFinished | None = None
    models: dict[int, ModelResponse] = field(default_factory=dict)
    calls: dict[str, CallRecord] = field(default_factory=dict)
    findings: RunFindings = field(default_factory=RunFindings)
    _proposed: dict[str, ToolCall] = field(default_factory=dict)
    _decisions: dict[str, Decision] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags, as it was queued or started."""
        first = self.started or self.queued
        return first.tags if first is not None else {}

    def apply(self, event: Event) -> None:
        _fold(self, event)

    def proposed(self, key: str) -> ToolCall | None:
        """The call proposed under `key`, as it was proposed (before any edit)."""
        return self._proposed.get(key)

    def _record(self, key: str) -> CallRecord:
        record = self.calls.get(key)
        if record is None:
            record = self.calls[key] = CallRecord()
        return record

    def _outcome(
        self,
        key: str,
        status: CallStatus,
        decision: Decision,
        *,
        result: object = None,
        code: str = "",
        error: str = "",
        ending: ev.RunEnding | None = None,
    ) -> CallOutcome:
        call = self._proposed.get(key) or ToolCall(key.rsplit(":", 1)[-1], "?", {})
        return CallOutcome(
            call, key, status, decision, result=result, error_code=code, error=error,
            replayed=True, ending=ending,
        )  # fmt: skip


# What replay needs of each event: a call's proposal, decision, rate slot, start,
# approval and outcome; the model's answers by step; the run's start and finish. The rest is
# telemetry and audit, not state a resumed run rebuilds.
_fold: EventHandlers[RunHistory, [], None] = EventHandlers("runtime.history")
_fold.ignore(
    ev.RunResumed, ev.RunWaiting, ev.ModelFailed, ev.ModelBreakerOpened, ev.ModelBreakerClosed,
    ev.ApprovalDecided, ev.BreakerTripped, ev.BudgetThresholdCrossed,
    ev.AgentStateChanged, ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven,
    ev.PersonSignedIn, ev.DriftAlarmed, ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


@_fold.on(ev.ToolCallProposed)
def _proposed(history: RunHistory, event: ev.ToolCallProposed) -> None:
    history._proposed[event.key] = event.call
    record = history._record(event.key)
    record.proposed = True
    record.sources = dict(event.sources)


@_fold.on(ev.GateDecided)
def _decided(history: RunHistory, event: ev.GateDecided) -> None:
    history._decisions[event.key] = event.decision
    if event.decision.verdict is Verdict.DENY:
        history._record(event.key).outcome = history._outcome(
            event.key,
            CallStatus.DENIED,
            event.decision,
            code=event.decision.primary_code,
            error=event.decision.reasons[0].message if event.decision.reasons else "denied",
        )


@_fold.on(ev.ToolSucceeded)
def _succeeded(history: RunHistory, event: ev.ToolSucceeded) -> None:
    decision = history._decisions.get(event.key, Decision(Verdict.ALLOW))
    history._record(event.key).outcome = history._outcome(
        event.key, CallStatus.EXECUTED, decision, result=event.result, ending=event.ending
    )


@_fold.on(ev.ResultScanned)
def _scanned(history: RunHistory, event: ev.ResultScanned) -> None:
    history._decisions[event.key] = event.decision
    history.findings.scanned.add(event.key)
    if event.action in ("review", "deny"):
        history.findings.standing.extend(
            StandingFinding(event.key, event.tool, event.source, event.action, event.step, found)
            for found in event.details
            if found.kind.startswith("injection")
        )


@_fold.on(ev.ToolFailed)
def _failed(history: RunHistory, event: ev.ToolFailed) -> None:
    status = CallStatus.UNKNOWN if event.outcome_unknown else CallStatus.FAILED
    decision = history._decisions.get(event.key, Decision(Verdict.ALLOW))
    history._record(event.key).on_timeout = event.on_timeout
    history._record(event.key).outcome = history._outcome(
        event.key, status, decision, code=event.code, error=event.message, ending=event.ending
    )


@_fold.on(ev.RateSlotTaken)
def _rate_slot(history: RunHistory, event: ev.RateSlotTaken) -> None:
    history._record(event.key).rate_slot = True


@_fold.on(ev.ToolStarted)
def _started(history: RunHistory, event: ev.ToolStarted) -> None:
    history._record(event.key).started = True


@_fold.on(ev.ApprovalRequested)
def _approval_requested(history: RunHistory, event: ev.ApprovalRequested) -> None:
    history._record(event.key).approval_id = event.approval_id


@_fold.on(ev.ApprovalUsed)
def _approval_used(history: RunHistory, event: ev.ApprovalUsed) -> None:
    history._record(event.key).approval_used = True


@_fold.on(ev.ModelResponded)
def _model(history: RunHistory, event: ev.ModelResponded) -> None:
    history.models[event.step] = event.response


@_fold.on(ev.RunStarted)
def _run_started(history: RunHistory, event: ev.RunStarted) -> None:
    history.started = event


@_fold.on(ev.RunQueued)
def _run_queued(history: RunHistory, event: ev.RunQueued) -> None:
    history.queued = event


@_fold.on(ev.RunFinished)
def _run_finished(history: RunHistory, event: ev.RunFinished) -> None:
    if history.finished is None:
        history.finished = event  # the first finish stands (a cancel may race a finish)
