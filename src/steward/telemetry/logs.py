"""Structured logs from the journal's committed events: one JSON line per event.

Each line carries ts (ISO-8601, UTC), level, event (its type), run_id, agent, trace_id
(when a TraceConsumer is given; one per run tree), for a delegated run parent_run_id and
root_run_id, and a short summary of the event: tool, verdict and
reason codes, status, latency, model, tokens. Content (the run's input and output, model
text, tool arguments and results, free-text messages) is logged only with
`record_content=True`, and then with PII masked.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, TextIO

from steward.core import events as ev
from steward.core.decision import Verdict
from steward.core.dispatch import EventHandlers
from steward.core.events import (
    AgentStateChanged,
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
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
    ToolCallProposed,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.core.times import rfc3339
from steward.telemetry.stream import Committed
from steward.telemetry.tracing import TraceConsumer, redacted

_RUN_LEVELS = {RunStatus.FAILED: "error", RunStatus.ESCALATED: "warning"}


def iso_utc(ts: float) -> str:
    return rfc3339(ts)


# The fields a record adds for its event type; every event is logged with the common
# fields (time, type, run, agent, trace) whether or not its type adds any.
_on: EventHandlers[JsonLogConsumer, [dict[str, Any]], None] = EventHandlers("telemetry.logs")
_on.ignore(
    ev.RunQueued, ev.RateSlotTaken, ev.BudgetThresholdCrossed, ev.KeyCreated,
    ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.DriftAlarmed, ev.McpPinChanged,
)  # fmt: skip


class JsonLogConsumer:
    """A journal consumer (telemetry.stream.Consumer) writing one JSON line per event."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        traces: TraceConsumer | None = None,
        record_content: bool = False,
        remembered_runs: int = 10_000,
    ) -> None:
        self.stream = stream  # None: sys.stderr as it is when a batch arrives
        self.traces = traces
        self.record_content = record_content
        self.remembered_runs = remembered_runs
        self.errors = 0
        self.last_error = ""
        self._agents: OrderedDict[str, str] = OrderedDict()  # run id → agent name
        # a delegated run → (parent run id, root run id), from its start: on each of its lines
        self._trees: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Committed]) -> None:
        with self._lock:
            stream = self.stream if self.stream is not None else sys.stderr
            for item in batch:
                try:
                    line = json.dumps(self.record(item), ensure_ascii=False, default=str)
                    stream.write(line + "\n")
                except Exception as exc:  # never raise into the journal
                    self.errors += 1
                    self.last_error = f"{item.type}: {type(exc).__name__}: {exc}"
            try:
                stream.flush()
            except Exception as exc:
                self.errors += 1
                self.last_error = f"flush: {type(exc).__name__}: {exc}"

    def record(self, item: Committed) -> dict[str, Any]:
        """The log record of one committed event, as a dict."""
        event = item.event
        run_id = item.run_id
        record: dict[str, Any] = {
            "ts": iso_utc(item.ts),
            "level": "info",
            "event": item.type,
            "run_id": run_id,
            "agent": None,
            "trace_id": None,
        }
        if not isinstance(event, Event):
            return record
        agent = self._agent(run_id, event)
        record["agent"] = agent
        if run_id:
            tree = self._tree(run_id, event)
            if tree is not None:
                record["parent_run_id"], record["root_run_id"] = tree
        if self.traces is not None and run_id:
            record["trace_id"] = self.traces.trace_id_of(run_id)
        record.update(self._summary(event))
        if run_id and isinstance(event, RunFinished):
            self._agents.pop(run_id, None)
            self._trees.pop(run_id, None)
        return record

    def _tree(self, run_id: str, event: Event) -> tuple[str, str] | None:
        if isinstance(event, RunStarted) and event.parent_run_id:
            self._trees[run_id] = (event.parent_run_id, event.root_run_id)
            while len(self._trees) > self.remembered_runs:
                self._trees.popitem(last=False)
        return self._trees.get(run_id)

    def _agent(self, run_id: str | None, event: Event) -> str | None:
        name = getattr(event, "agent", None)
        if not run_id:
            return name if isinstance(name, str) and name else None
        if isinstance(name, str) and name:
            self._agents[run_id] = name
            self._agents.move_to_end(run_id)
            while len(self._agents) > self.remembered_runs:
                self._agents.popitem(last=False)
            return name
        return self._agents.get(run_id)

    def _content(self, out: dict[str, Any], name: str, value: Any) -> None:
        if self.record_content:
            out[name] = redacted(value)

    def _summary(self, event: Event) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _on(self, event, out)
        return out

    @_on.on(RunStarted)
    def _run_started(self, event: RunStarted, out: dict[str, Any]) -> None:
        out.update(agent_version=event.agent_version, redacted=list(event.redacted))
        self._content(out, "input", event.input)

    @_on.on(RunResumed)
    def _run_resumed(self, event: RunResumed, out: dict[str, Any]) -> None:
        out.update(reason=event.reason)

    @_on.on(ModelResponded)
    def _model_responded(self, event: ModelResponded, out: dict[str, Any]) -> None:
        usage = event.response.usage
        out.update(
            step=event.step,
            model=event.response.model,
            latency_ms=round(event.latency_ms, 3),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
            finish_reason=event.response.finish_reason,
            estimated_usage=usage.estimated,
            tool_calls=[c.name for c in event.response.tool_calls],
        )
        if event.response.text:
            self._content(out, "text", event.response.text)

    @_on.on(ToolCallProposed)
    def _tool_call_proposed(self, event: ToolCallProposed, out: dict[str, Any]) -> None:
        out.update(step=event.step, tool=event.call.name, call_id=event.call.id)
        out.update(key=event.key)
        self._content(out, "arguments", event.call.arguments)

    @_on.on(GateDecided)
    def _gate_decided(self, event: GateDecided, out: dict[str, Any]) -> None:
        decision = event.decision
        out.update(tool=event.tool, key=event.key, stage=event.stage)
        out.update(verdict=decision.verdict.value, rule_ids=list(decision.rule_ids))
        out.update(reason_codes=[r.code for r in decision.reasons])
        if decision.verdict is Verdict.DENY:
            out["level"] = "warning"
        self._content(out, "reasons", [r.message for r in decision.reasons])

    @_on.on(ApprovalRequested)
    def _approval_requested(self, event: ApprovalRequested, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, key=event.key, approval_id=event.approval_id)
        out.update(expires_at=iso_utc(event.expires_at))
        self._content(out, "reason", event.reason)
        self._content(out, "arguments", event.arguments)

    @_on.on(ApprovalDecided)
    def _approval_decided(self, event: ApprovalDecided, out: dict[str, Any]) -> None:
        out.update(key=event.key, approval_id=event.approval_id, outcome=event.outcome)
        out.update(by=event.by)
        if event.comment:
            self._content(out, "comment", event.comment)
        if event.arguments is not None:
            self._content(out, "arguments", event.arguments)

    @_on.on(ApprovalUsed)
    def _approval_used(self, event: ApprovalUsed, out: dict[str, Any]) -> None:
        out.update(key=event.key, approval_id=event.approval_id)

    @_on.on(ToolStarted)
    def _tool_started(self, event: ToolStarted, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, key=event.key, attempt=event.attempt)

    @_on.on(ToolSucceeded)
    def _tool_succeeded(self, event: ToolSucceeded, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, key=event.key, status="succeeded")
        out.update(latency_ms=round(event.latency_ms, 3), attempts=event.attempts)
        self._content(out, "result", event.result)

    @_on.on(ToolFailed)
    def _tool_failed(self, event: ToolFailed, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, key=event.key, status="failed", code=event.code)
        out.update(attempts=event.attempts, outcome_unknown=event.outcome_unknown)
        if event.on_timeout:
            out["on_timeout"] = event.on_timeout
        out["level"] = "error" if event.outcome_unknown else "warning"
        self._content(out, "message", event.message)

    @_on.on(ResultScanned)
    def _result_scanned(self, event: ResultScanned, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, key=event.key, verdict=event.decision.verdict.value)
        out.update(reason_codes=[r.code for r in event.decision.reasons])
        out.update(findings=list(event.findings), source=event.source)
        out.update(action=event.action, step=event.step)

    @_on.on(ModelFailed)
    def _model_failed(self, event: ModelFailed, out: dict[str, Any]) -> None:
        out.update(step=event.step, model=event.model, endpoint=event.endpoint)
        out.update(code=event.code, attempt=event.attempt, level="warning")
        out.update(elapsed_ms=round(event.elapsed_ms, 3), streamed=event.streamed)
        self._content(out, "message", event.message)

    @_on.on(ModelBreakerOpened)
    def _model_breaker_opened(self, event: ModelBreakerOpened, out: dict[str, Any]) -> None:
        out.update(endpoint=event.endpoint, failures=event.failures, level="warning")
        out.update(cooldown_seconds=event.cooldown_seconds)

    @_on.on(ModelBreakerClosed)
    def _model_breaker_closed(self, event: ModelBreakerClosed, out: dict[str, Any]) -> None:
        out.update(endpoint=event.endpoint)

    @_on.on(BreakerTripped)
    def _breaker_tripped(self, event: BreakerTripped, out: dict[str, Any]) -> None:
        out.update(tool=event.tool, failures=event.failures, level="warning")
        out.update(cooldown_seconds=event.cooldown_seconds)

    @_on.on(RunWaiting)
    def _run_waiting(self, event: RunWaiting, out: dict[str, Any]) -> None:
        out.update(status="waiting", approval_ids=list(event.approval_ids))

    @_on.on(RunFinished)
    def _run_finished(self, event: RunFinished, out: dict[str, Any]) -> None:
        out.update(status=event.status.value, steps=event.steps)
        out.update(level=_RUN_LEVELS.get(event.status, "info"))
        if event.reason_code:
            out["reason_code"] = event.reason_code
        if event.confidence is not None:
            out["confidence"] = event.confidence
        self._content(out, "reason", event.reason)
        self._content(out, "output", event.output)

    @_on.on(ev.LabelMoved)
    def _label_moved(self, event: ev.LabelMoved, out: dict[str, Any]) -> None:
        out.update(agent=event.agent, label=event.label, version=event.version,
                   previous=event.previous, action=event.action, by=event.by)  # fmt: skip

    @_on.on(AgentStateChanged)
    def _agent_state_changed(self, event: AgentStateChanged, out: dict[str, Any]) -> None:
        out.update(enabled=event.enabled, by=event.by)
        if event.comment:
            self._content(out, "comment", event.comment)
