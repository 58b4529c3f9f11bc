"""From journal events to observations: what each run of a monitored agent contributes
to each metric, and for which version.

- confidence, escalation_rate (1 if the run ended escalated), latency (seconds from its
  start to its end), cost (model and tool spend): at the run's end (run.finished; a
  cancelled run is not an observation);
- denial_rate: 1 if any call of the run was denied by the gate (runs whose start was
  folded; a run that started before the monitor's first event is not counted);
- accuracy: each feedback verdict (run.feedback; 1 correct, 0 incorrect), for the version
  of the run it judges.

A run whose start was not folded (it began before the monitor's first event) is looked up
in the store once, at its end; runs of agents nobody monitors never are.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from steward.core import events as ev
from steward.core.decision import Verdict
from steward.core.dispatch import EventHandlers
from steward.core.errors import StewardError
from steward.core.events import (
    Event,
    FeedbackGiven,
    GateDecided,
    ModelResponded,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    ToolSucceeded,
)
from steward.store.database import Database
from steward.store.runs import get_run

__all__ = ["FOLDED", "Observe", "RunObserver"]

# agent, version, metric, value, ts
Observe = Callable[[str, str, str, float, float], None]


@dataclass(slots=True)
class _Run:
    agent: str
    version: str
    started: float
    cost: float = 0.0
    denied: bool = False
    seen_start: bool = True  # False: rebuilt from the store; its calls were not seen


_on: EventHandlers[RunObserver, [str | None, float], None] = EventHandlers("monitor.drift")
_on.ignore(
    ev.RunQueued,
    ev.ModelFailed,
    ev.ModelBreakerOpened,
    ev.ModelBreakerClosed,
    ev.ToolCallProposed,
    ev.RateSlotTaken,
    ev.ApprovalRequested,
    ev.ApprovalDecided,
    ev.ApprovalUsed,
    ev.ToolStarted,
    ev.ToolFailed,
    ev.ResultScanned,
    ev.BreakerTripped,
    ev.BudgetThresholdCrossed,
    ev.RunWaiting,
    ev.AgentStateChanged,
    ev.KeyCreated,
    ev.KeyRevoked,
    ev.DriftAlarmed,
    ev.PersonSignedIn,
    ev.LabelMoved,
    ev.McpPinChanged,
)


class RunObserver:
    """Folds events (`fold`) into observations handed to `observe`. Memory is bounded:
    at most `max_tracked` runs in flight, finished (for feedback) and of other agents."""

    def __init__(
        self,
        db: Database,
        monitored: Collection[str],
        observe: Observe,
        *,
        max_tracked: int = 100_000,
    ) -> None:
        self.db = db
        self.monitored = frozenset(monitored)
        self.observe = observe
        self.max_tracked = max_tracked
        self._runs: OrderedDict[str, _Run] = OrderedDict()  # in flight
        self._finished: OrderedDict[str, tuple[str, str]] = OrderedDict()  # for feedback
        self._others: OrderedDict[str, None] = OrderedDict()  # runs of unmonitored agents

    def fold(self, event: Event, run_id: str | None, ts: float) -> None:
        _on(self, event, run_id, ts)

    @_on.on(RunStarted)
    def _started(self, event: RunStarted, run_id: str | None, ts: float) -> None:
        if run_id is None:
            return
        if event.agent not in self.monitored:
            self._other(run_id)
            return
        if len(self._runs) >= self.max_tracked:
            self._runs.popitem(last=False)
        self._runs[run_id] = _Run(event.agent, event.agent_version, ts)

    @_on.on(RunResumed)
    def _resumed(self, event: RunResumed, run_id: str | None, ts: float) -> None:
        if run_id is not None and event.agent and event.agent not in self.monitored:
            self._other(run_id)  # its end needs no look-up in the store

    def _other(self, run_id: str) -> None:
        if len(self._others) >= self.max_tracked:
            self._others.popitem(last=False)
        self._others[run_id] = None

    @_on.on(ModelResponded)
    def _model(self, event: ModelResponded, run_id: str | None, ts: float) -> None:
        run = self._runs.get(run_id) if run_id is not None else None
        cost = float(event.response.usage.cost_usd)
        if run is not None and math.isfinite(cost) and cost > 0:
            run.cost += cost

    @_on.on(ToolSucceeded)
    def _tool(self, event: ToolSucceeded, run_id: str | None, ts: float) -> None:
        run = self._runs.get(run_id) if run_id is not None else None
        if run is not None and math.isfinite(event.cost_usd) and event.cost_usd > 0:
            run.cost += event.cost_usd

    @_on.on(GateDecided)
    def _decided(self, event: GateDecided, run_id: str | None, ts: float) -> None:
        run = self._runs.get(run_id) if run_id is not None else None
        if run is not None and event.decision.verdict is Verdict.DENY:
            run.denied = True

    @_on.on(RunFinished)
    def _finished_run(self, event: RunFinished, run_id: str | None, ts: float) -> None:
        if run_id is None or run_id in self._others:
            return
        run = self._runs.pop(run_id, None) or self._from_store(run_id)
        if run is None:
            return
        self._remember(run_id, run.agent, run.version)
        status = RunStatus(event.status)
        if status is RunStatus.CANCELLED:
            return
        observe = self.observe
        if event.confidence is not None:
            observe(run.agent, run.version, "confidence", event.confidence, ts)
        observe(run.agent, run.version, "escalation_rate", float(status is RunStatus.ESCALATED), ts)
        observe(run.agent, run.version, "latency", max(0.0, ts - run.started), ts)
        if run.seen_start:
            observe(run.agent, run.version, "denial_rate", float(run.denied), ts)
            observe(run.agent, run.version, "cost", run.cost, ts)

    @_on.on(FeedbackGiven)
    def _feedback(self, event: FeedbackGiven, run_id: str | None, ts: float) -> None:
        if run_id is None or run_id in self._others:
            return
        found = self._finished.get(run_id)
        if found is None:
            run = self._from_store(run_id)
            if run is None:
                return
            found = (run.agent, run.version)
        value = 1.0 if event.verdict == "correct" else 0.0
        self.observe(found[0], found[1], "accuracy", value, ts)

    def _from_store(self, run_id: str) -> _Run | None:
        """A run this consumer did not see start (it began before a restart)."""
        try:
            row = get_run(self.db, run_id)
        except StewardError:
            return None
        if row.agent not in self.monitored:
            return None
        return _Run(row.agent, row.agent_version, row.created_at, seen_start=False)

    def _remember(self, run_id: str, agent: str, version: str) -> None:
        if len(self._finished) >= self.max_tracked:
            self._finished.popitem(last=False)
        self._finished[run_id] = (agent, version)


FOLDED = frozenset(ev.tag_of(t) for t in _on.handled)
"""The event types that become observations (the others need not be decoded)."""
