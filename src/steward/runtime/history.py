"""A run's history indexed for replay: model responses by step, call records by key.

The same `apply` folds events as they are emitted live and as they are read back from
the journal on resume, so live state and replayed state cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steward.core.decision import Decision, Verdict
from steward.core.events import (
    ApprovalRequested,
    ApprovalUsed,
    Event,
    GateDecided,
    ModelResponded,
    ResultScanned,
    RunFinished,
    RunQueued,
    RunStarted,
    ToolCallProposed,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.core.messages import ModelResponse, ToolCall
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.scope import CallRecord


@dataclass(slots=True)
class RunHistory:
    queued: RunQueued | None = None
    started: RunStarted | None = None
    finished: RunFinished | None = None
    models: dict[int, ModelResponse] = field(default_factory=dict)
    calls: dict[str, CallRecord] = field(default_factory=dict)
    _proposed: dict[str, ToolCall] = field(default_factory=dict)
    _decisions: dict[str, Decision] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        if isinstance(event, ToolCallProposed):
            self._proposed[event.key] = event.call
            self._record(event.key).proposed = True
            self._record(event.key).sources = dict(event.sources)
        elif isinstance(event, GateDecided):
            self._decisions[event.key] = event.decision
            if event.decision.verdict is Verdict.DENY:
                self._record(event.key).outcome = self._outcome(
                    event.key,
                    CallStatus.DENIED,
                    event.decision,
                    code=event.decision.primary_code,
                    error=event.decision.reasons[0].message if event.decision.reasons else "denied",
                )
        elif isinstance(event, ToolSucceeded):
            decision = self._decisions.get(event.key, Decision(Verdict.ALLOW))
            self._record(event.key).outcome = self._outcome(
                event.key, CallStatus.EXECUTED, decision, result=event.result
            )
        elif isinstance(event, ResultScanned):
            self._decisions[event.key] = event.decision
        elif isinstance(event, ToolFailed):
            status = CallStatus.UNKNOWN if event.outcome_unknown else CallStatus.FAILED
            decision = self._decisions.get(event.key, Decision(Verdict.ALLOW))
            self._record(event.key).on_timeout = event.on_timeout
            self._record(event.key).outcome = self._outcome(
                event.key, status, decision, code=event.code, error=event.message
            )
        elif isinstance(event, ToolStarted):
            self._record(event.key).started = True
        elif isinstance(event, ApprovalRequested):
            self._record(event.key).approval_id = event.approval_id
        elif isinstance(event, ApprovalUsed):
            self._record(event.key).approval_used = True
        elif isinstance(event, ModelResponded):
            self.models[event.step] = event.response
        elif isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, RunQueued):
            self.queued = event
        elif isinstance(event, RunFinished) and self.finished is None:
            self.finished = event  # the first finish stands (a cancel may race a finish)

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
    ) -> CallOutcome:
        call = self._proposed.get(key) or ToolCall(key.rsplit(":", 1)[-1], "?", {})
        return CallOutcome(
            call, key, status, decision, result=result, error_code=code, error=error, replayed=True
        )
