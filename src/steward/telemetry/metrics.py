"""Prometheus metrics, folded from the journal's committed event stream.

`MetricsConsumer` is subscribed to a Journal (`journal.subscribe(consumer)`) and sees
every batch after it commits; business logic never touches a counter. It keeps a little
state per active run (agent name, activation start) and per pending approval, and drops
it when the run waits or finishes, so memory stays bounded by what is in flight.

State (runs active, waiting, queued; approvals pending) is not folded here: a process
sees only its own commits since it started. telemetry/state.py reads it from the store
at every scrape, with the build info.

Label cardinality is bounded: labels carry agent, tool and model names, verdicts,
statuses, rule ids and reason codes, never run ids, idempotency keys or free text, and
each label name accepts at most `max_label_values` distinct values; later ones are
counted as "other".

Exposition: `render()` for a /metrics endpoint, `write_textfile()` for one-shot CLI runs
(the node-exporter textfile collector), `push()` for a Pushgateway.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    push_to_gateway,
    write_to_textfile,
)

from steward.core import events as ev
from steward.core.decision import Decision, Verdict
from steward.core.dispatch import EventHandlers
from steward.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalUsed,
    BreakerTripped,
    DriftAlarmed,
    Event,
    GateDecided,
    ModelBreakerOpened,
    ModelFailed,
    ModelResponded,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.telemetry.stream import Committed

__all__ = ["CONTENT_TYPE", "MetricsConsumer", "push", "render", "write_textfile"]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # for a /metrics response
UNKNOWN = "unknown"
OTHER = "other"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
APPROVAL_BUCKETS = (1, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_APPROVAL_OUTCOMES = frozenset({"approved", "rejected", "expired", "cancelled"})
# Run and approval ids must never become label values, whatever a tool name says.
_ID_LIKE = re.compile(r"(?:run|apr)_[0-9a-f]{8,}")
_MAX_LABEL_LENGTH = 100


class _Labels:
    """Caps the distinct values of each label name (shared by every metric using it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, set[str]] = {}

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.setdefault(label, set())
        if value in seen:
            return value
        if (
            not value
            or len(seen) >= self.limit
            or len(value) > _MAX_LABEL_LENGTH
            or _ID_LIKE.search(value)
        ):
            return OTHER if value else UNKNOWN
        seen.add(value)
        return value


@dataclass(slots=True)
class _Run:
    agent: str  # already a bounded label value
    since: float  # ts of RunStarted/RunResumed


@dataclass(frozen=True, slots=True)
class _Approval:
    agent: str
    requested: float
    key: str


# Counted per run, call, approval and model; the rest has no metric (a queued run is
# counted when it starts; proposals become calls at their decision).
_on: EventHandlers[MetricsConsumer, [str | None, float], None] = EventHandlers("telemetry.metrics")
_on.ignore(
    ev.RunQueued, ev.ModelBreakerClosed, ev.ToolCallProposed, ev.RateSlotTaken,
    ev.ResultScanned, ev.BudgetThresholdCrossed, ev.AgentStateChanged, ev.KeyCreated,
    ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


class MetricsConsumer:
    """A telemetry `Consumer`: call it with committed batches; it never raises."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_label_values: int = 200,
        max_tracked: int = 100_000,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_tracked = max_tracked
        self._label = _Labels(max_label_values)
        self._lock = threading.Lock()  # one consumer may serve several journals
        self._runs: dict[str, _Run] = {}  # active runs only
        self._approvals: dict[str, _Approval] = {}  # pending requests this consumer saw
        self._approval_by_key: dict[str, str] = {}
        self._began: dict[str, float] = {}  # call key -> ts it was let through the gate
        r = self.registry
        self.tasks = Counter(
            "agent_tasks_total",
            "Run activations that ended, by final status (or waiting).",
            ["agent_name", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "agent_task_duration_seconds",
            "Tool call latency (tool=name) and run activation time (tool empty).",
            ["agent_name", "tool"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        # A counter (exposed as agent_cost_usd_total), so rate() and increase() work. It
        # starts at 0 with the process, which Prometheus reads as a counter reset: seeding
        # it from the ledger would show a restart as spend. All-time totals: `steward costs`.
        self.cost = Counter(
            "agent_cost_usd",
            "Model spend in US dollars since this process started.",
            ["agent_name", "model"],
            registry=r,
        )
        self.tool_calls = Counter(
            "agent_tool_calls_total",
            "Proposed tool calls by outcome: executed, failed, denied, waiting, unknown.",
            ["agent_name", "tool", "outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "agent_policy_decisions_total",
            "Gate decisions by verdict and first rule id (or reason code).",
            ["agent_name", "verdict", "rule"],
            registry=r,
        )
        # per version, so a canary is compared with its stable arm: the version, label and
        # arm are those the run's RunStarted recorded (runs this process saw start)
        self.by_version = Counter(
            "agent_runs_by_version_total",
            "Finished runs by agent version, the label and canary arm that chose it, status.",
            ["agent_name", "agent_version", "label", "arm", "status"],
            registry=r,
        )
        self._version_of: dict[str, tuple[str, str, str]] = {}  # run id -> version, label, arm
        self.escalations = Counter(
            "agent_escalations_total",
            "Runs that ended escalated, by reason code.",
            ["agent_name", "reason"],
            registry=r,
        )
        self.approval_seconds = Histogram(
            "agent_approval_decision_seconds",
            "Time from an approval request to its decision.",
            ["agent_name", "outcome"],
            buckets=APPROVAL_BUCKETS,
            registry=r,
        )
        self.confidence = Histogram(
            "agent_model_confidence",
            "Final answer confidence.",
            ["agent_name"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.breaker_trips = Counter(
            "agent_gate_breaker_trips_total",
            "Circuit breakers opened.",
            ["agent_name", "tool"],
            registry=r,
        )
        self.model_failures = Counter(
            "agent_model_failures_total",
            "Failed model attempts (each retry and fallback counts), by typed code.",
            ["agent_name", "model", "code"],
            registry=r,
        )
        self.model_breaker_trips = Counter(
            "agent_model_breaker_trips_total",
            "Model endpoint circuit breakers opened.",
            ["agent_name", "model"],
            registry=r,
        )
        self.drift_alarms = Counter(
            "agent_drift_alarm",
            "Drift monitor alarms (a control chart signalled), by version, metric, direction.",
            ["agent_name", "version", "metric", "direction"],
            registry=r,
        )
        self.errors = Counter(
            "steward_telemetry_errors_total",
            "Committed events a telemetry consumer could not fold.",
            ["consumer", "event"],
            registry=r,
        )

    # -- the consumer ------------------------------------------------------------------

    def __call__(self, batch: Sequence[Committed]) -> None:
        with self._lock:
            try:
                items = list(batch)
            except Exception:
                self._error("batch")
                return
            for item in items:
                try:
                    self._apply(item)
                except Exception:
                    self._error(getattr(item, "type", None))

    def _error(self, kind: object) -> None:
        with contextlib.suppress(Exception):  # counting an error must not raise either
            self.errors.labels("metrics", self._label("event", str(kind or UNKNOWN))).inc()

    def _apply(self, item: Committed) -> None:
        event, run_id, ts = item.event, item.run_id, float(item.ts)
        if not math.isfinite(ts):
            raise ValueError(f"bad timestamp {ts!r}")
        if isinstance(event, Event):
            _on(self, event, run_id, ts)

    # -- events ------------------------------------------------------------------------

    @_on.on(RunStarted)
    def _run_started(self, event: RunStarted, run_id: str | None, ts: float) -> None:
        self._activate(run_id, ts, event.agent)
        if run_id is not None:
            if len(self._version_of) >= self.max_tracked:  # forget the oldest
                self._version_of.pop(next(iter(self._version_of)))
            self._version_of[run_id] = (
                self._label("agent_version", event.agent_version or UNKNOWN),
                self._label("label", event.label or "none"),
                self._label("arm", event.arm or "none"),
            )

    @_on.on(RunResumed)
    def _run_resumed(self, event: RunResumed, run_id: str | None, ts: float) -> None:
        self._activate(run_id, ts, event.agent)

    @_on.on(RunWaiting)
    def _run_waiting(self, event: RunWaiting, run_id: str | None, ts: float) -> None:
        self.tasks.labels(self._deactivate(run_id, ts), "waiting").inc()

    @_on.on(ApprovalDecided)
    def _approval_decided(self, event: ApprovalDecided, run_id: str | None, ts: float) -> None:
        outcome = event.outcome if event.outcome in _APPROVAL_OUTCOMES else OTHER
        self._resolve(event.approval_id, ts, outcome)

    @_on.on(ApprovalUsed)
    def _approval_used(self, event: ApprovalUsed, run_id: str | None, ts: float) -> None:
        # the decision reached the run: approved, at the latest now
        self._resolve(event.approval_id, ts, "approved")

    @_on.on(ToolStarted)
    def _tool_started(self, event: ToolStarted, run_id: str | None, ts: float) -> None:
        if event.attempt <= 1:  # retries are part of the call's time
            self._track(self._began, event.key, ts)

    @_on.on(ToolSucceeded)
    def _tool_succeeded(self, event: ToolSucceeded, run_id: str | None, ts: float) -> None:
        self._tool_done(run_id, event.key, event.tool, "executed")
        self.duration.labels(self._agent(run_id), self._label("tool", event.tool)).observe(
            _seconds(event.latency_ms / 1000.0)
        )

    @_on.on(ToolFailed)
    def _tool_failed(self, event: ToolFailed, run_id: str | None, ts: float) -> None:
        outcome = UNKNOWN if event.outcome_unknown else "failed"
        began = self._tool_done(run_id, event.key, event.tool, outcome)
        if not event.outcome_unknown and (event.latency_ms > 0 or began is not None):
            tool = self._label("tool", event.tool)
            seconds = (
                event.latency_ms / 1000 if event.latency_ms > 0 else _seconds(ts - (began or ts))
            )
            self.duration.labels(self._agent(run_id), tool).observe(seconds)

    @_on.on(ModelFailed)
    def _model_failed(self, event: ModelFailed, run_id: str | None, ts: float) -> None:
        model = self._label("model", event.model or UNKNOWN)
        code = self._label("code", event.code or UNKNOWN)
        self.model_failures.labels(self._agent(run_id), model, code).inc()

    @_on.on(ModelBreakerOpened)
    def _model_breaker(self, event: ModelBreakerOpened, run_id: str | None, ts: float) -> None:
        model = self._label("model", event.endpoint.split("@", 1)[0] or UNKNOWN)
        self.model_breaker_trips.labels(self._agent(run_id), model).inc()

    @_on.on(BreakerTripped)
    def _breaker_tripped(self, event: BreakerTripped, run_id: str | None, ts: float) -> None:
        self.breaker_trips.labels(self._agent(run_id), self._label("tool", event.tool)).inc()

    @_on.on(DriftAlarmed)
    def _drift(self, event: DriftAlarmed, run_id: str | None, ts: float) -> None:
        self.drift_alarms.labels(
            self._label("agent_name", event.agent),
            self._label("version", event.agent_version),
            self._label("metric", event.metric),
            "up" if event.direction == "up" else "down",
        ).inc()

    # -- runs --------------------------------------------------------------------------

    def _agent(self, run_id: str | None) -> str:
        run = self._runs.get(run_id) if run_id is not None else None
        return run.agent if run is not None else UNKNOWN

    def _activate(self, run_id: str | None, ts: float, agent: str) -> None:
        if run_id is None:
            raise ValueError("a run event without a run id")
        run = self._runs.get(run_id)
        if run is not None:  # a second activation without an end (a crash): restart the clock
            run.since = ts
            return
        name = self._label("agent_name", agent or UNKNOWN)
        if len(self._runs) >= self.max_tracked:  # forget the oldest
            self._runs.pop(next(iter(self._runs)))
        self._runs[run_id] = _Run(name, ts)

    def _deactivate(self, run_id: str | None, ts: float) -> str:
        """End an activation; returns the agent label (unknown for a run it never saw
        start, whose activation time is not known either)."""
        run = self._runs.pop(run_id, None) if run_id is not None else None
        if run is None:
            return UNKNOWN
        self.duration.labels(run.agent, "").observe(_seconds(ts - run.since))
        return run.agent

    @_on.on(RunFinished)
    def _finished(self, event: RunFinished, run_id: str | None, ts: float) -> None:
        status = RunStatus(event.status)
        agent = self._deactivate(run_id, ts)
        self.tasks.labels(agent, status.value).inc()
        chosen = self._version_of.pop(run_id, None) if run_id is not None else None
        if chosen is not None:
            self.by_version.labels(agent, *chosen, status.value).inc()
        if status is RunStatus.ESCALATED:
            reason = self._label("reason", event.reason_code or UNKNOWN)
            self.escalations.labels(agent, reason).inc()
        if event.confidence is not None and math.isfinite(event.confidence):
            self.confidence.labels(agent).observe(event.confidence)

    @_on.on(ModelResponded)
    def _model(self, event: ModelResponded, run_id: str | None, ts: float) -> None:
        cost = float(event.response.usage.cost_usd)
        if not math.isfinite(cost) or cost < 0:
            raise ValueError(f"bad cost {cost!r}")
        model = self._label("model", event.response.model or UNKNOWN)
        self.cost.labels(self._agent(run_id), model).inc(cost)

    # -- calls and approvals -----------------------------------------------------------

    @_on.on(GateDecided)
    def _decided(self, event: GateDecided, run_id: str | None, ts: float) -> None:
        agent = self._agent(run_id)
        verdict = Verdict(event.decision.verdict)
        rule = self._label("rule", _rule(event.decision))
        self.decisions.labels(agent, verdict.value, rule).inc()
        if verdict is Verdict.DENY:
            self._tool_done(run_id, event.key, event.tool, "denied")
            approval_id = self._approval_by_key.get(event.key)
            if event.stage == "approval" and approval_id is not None:
                code = event.decision.primary_code.removeprefix("approval.")
                self._resolve(approval_id, ts, code if code in _APPROVAL_OUTCOMES else OTHER)
        elif event.decision.allowed:
            self._track(self._began, event.key, ts)

    def _tool_done(self, run_id: str | None, key: str, tool: str, outcome: str) -> float | None:
        self.tool_calls.labels(self._agent(run_id), self._label("tool", tool), outcome).inc()
        return self._began.pop(key, None)

    @_on.on(ApprovalRequested)
    def _requested(self, event: ApprovalRequested, run_id: str | None, ts: float) -> None:
        agent = self._label("agent_name", event.agent) if event.agent else self._agent(run_id)
        self.tool_calls.labels(agent, self._label("tool", event.tool), "waiting").inc()
        if event.approval_id in self._approvals:
            return
        if len(self._approvals) >= self.max_tracked:
            oldest = self._approvals.pop(next(iter(self._approvals)))
            self._approval_by_key.pop(oldest.key, None)
        self._approvals[event.approval_id] = _Approval(agent, ts, event.key)
        self._approval_by_key[event.key] = event.approval_id

    def _resolve(self, approval_id: str, ts: float, outcome: str) -> None:
        """The first sign of a decision settles a request this consumer saw; later signs
        of the same decision (approval.used after approval.decided) are ignored."""
        approval = self._approvals.pop(approval_id, None)
        if approval is None:
            return
        self._approval_by_key.pop(approval.key, None)
        seconds = _seconds(ts - approval.requested)
        self.approval_seconds.labels(approval.agent, outcome).observe(seconds)

    def _track(self, table: dict[str, float], key: str, ts: float) -> None:
        if key not in table and len(table) >= self.max_tracked:
            table.pop(next(iter(table)))
        table[key] = ts


def _rule(decision: Decision) -> str:
    """The first rule id; approval grants name their approval id, so they collapse to
    "approval". A decision without rules (args.invalid, breaker.open, ...) gives its code."""
    if not decision.rule_ids:
        return decision.primary_code
    rule = decision.rule_ids[0]
    return "approval" if rule.startswith("approval.") else rule


def _seconds(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"bad duration {value!r}")
    return max(0.0, value)


# -- exposition ------------------------------------------------------------------------


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format (serve with Content-Type `CONTENT_TYPE`)."""
    return generate_latest(registry)


def write_textfile(registry: CollectorRegistry, path: str | Path) -> None:
    """Write the exposition atomically (a temporary file in the same directory, then a
    rename), for the node-exporter textfile collector. The name should end in `.prom`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(target), registry)


def push(
    registry: CollectorRegistry,
    gateway_url: str,
    job: str,
    *,
    grouping_key: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """PUT the registry to a Pushgateway (replacing the job's group). Raises OSError
    (urllib's URLError) when the gateway cannot be reached; callers decide whether a
    failed push matters."""
    push_to_gateway(gateway_url, job, registry, grouping_key=grouping_key, timeout=timeout)
