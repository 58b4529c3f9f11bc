"""The drift monitor: a consumer of the journal's committed events that keeps one control
chart per agent, version and metric (series.py) and journals an alarm when one signals.

    monitor = DriftMonitor(db, journal, {"support-desk": spec.monitors}, registry=registry)
    monitor.catch_up()          # load saved state, fold what was committed since
    journal.subscribe(monitor)  # from now on: every committed batch

What each metric observes, per run of a monitored agent:
- confidence, escalation_rate (1 if the run ended escalated), latency (seconds from its
  start to its end), cost (model and tool spend): at the run's end (run.finished; a
  cancelled run is not an observation);
- denial_rate: 1 if any call of the run was denied by the gate (runs this process saw
  start: a run that started before a restart and was not replayed is not counted);
- accuracy: each feedback verdict (run.feedback; 1 correct, 0 incorrect), for the version
  of the run it judges. Judged samples (an evaluator's verdict on a production run) feed
  the same series through `observe(agent, version, "accuracy", 1.0 or 0.0)`.

An alarm is a `monitor.alarm` event (DriftAlarmed), written with its series' state in
one transaction (store/monitors.py save_alarm) and published to the journal's consumers
like any commit: the audit chain records it, telemetry counts it (agent_drift_alarm_total) and posts it to the
webhook (telemetry/alerts.py), the console marks it. The chart restarts after an alarm.

State survives a restart: each series' state is saved (table monitor_state, at most every
`save_every` seconds, with each alarm, and at close) with the ts of the last event
it folded. `catch_up()` loads it and folds the events committed since, at most
`max_catchup` of them (a bounded start; what is older is left out and logged). Saving
beats recomputing from the whole journal: a CUSUM's state depends on every observation
since its last restart, so an exact recomputation is unbounded; the saved state plus a
bounded tail is exact whenever the tail fits.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from steward.core import events as ev
from steward.core.decision import Verdict
from steward.core.dispatch import EventHandlers
from steward.core.errors import StewardError
from steward.core.events import (
    DriftAlarmed,
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
from steward.monitor.series import Alarm, Series, SeriesConfig
from steward.spec.models import AgentSpec, Monitors
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.monitors import (
    MonitorRow,
    events_since,
    load_monitor_rows,
    save_alarm,
    save_monitor_rows,
)
from steward.store.runs import get_run
from steward.telemetry.stream import Committed

__all__ = ["DriftMonitor", "install_monitor", "series_configs"]

log = logging.getLogger("steward.monitor")

Key = tuple[str, str, str]  # agent, version, metric


def series_configs(monitors: Monitors) -> dict[str, SeriesConfig]:
    """The spec's `monitors:` section as one SeriesConfig per metric."""
    return {
        name: SeriesConfig(
            metric=name,
            chart=m.chart,
            arl0=m.arl0 if m.arl0 is not None else monitors.arl0,
            warmup=m.warmup if m.warmup is not None else monitors.warmup,
            shift=m.shift,
            shift_sigma=m.shift_sigma,
            shift_percent=m.shift_percent,
            batch=m.batch,
        )
        for name, m in monitors.metrics.items()
    }


@dataclass(slots=True)
class _Run:
    agent: str
    version: str
    started: float
    cost: float = 0.0
    denied: bool = False
    seen_start: bool = True  # False: rebuilt from the store; its calls were not seen


@dataclass(slots=True)
class _Tracked:
    series: Series
    previous_version: str
    first_seen: float
    through_ts: float
    dirty: bool = False


_on: EventHandlers[DriftMonitor, [str | None, float], None] = EventHandlers("monitor.drift")
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
)


class DriftMonitor:
    """A journal consumer (call it with committed batches); never raises into the journal."""

    def __init__(
        self,
        db: Database,
        journal: Journal | None,
        monitors: Mapping[str, Monitors],
        *,
        registry: CollectorRegistry | None = None,
        save_every: float = 5.0,
        max_tracked: int = 100_000,
        max_catchup: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.journal = journal
        self.configs = {agent: series_configs(m) for agent, m in monitors.items()}
        self.webhooks = {agent: m.webhook for agent, m in monitors.items()}
        self.save_every = save_every
        self.max_tracked = max_tracked
        self.max_catchup = max_catchup
        self.clock = clock
        self.alarms: list[DriftAlarmed] = []  # raised by this process (tests, the CLI)
        self.errors = 0
        self._lock = threading.RLock()
        self._series: dict[Key, _Tracked] = {}
        self._latest: dict[str, tuple[float, str]] = {}  # agent -> (first seen, version)
        self._runs: OrderedDict[str, _Run] = OrderedDict()  # in flight
        self._finished: OrderedDict[str, tuple[str, str]] = OrderedDict()  # for feedback
        self._others: OrderedDict[str, None] = OrderedDict()  # runs of unmonitored agents
        self._replaying = False  # catching up: skip what each series folded before
        self._saved_at = clock()
        self._statistic: Gauge | None = None
        self._limit: Gauge | None = None
        if registry is not None:
            labels = ["agent_name", "version", "metric"]
            self._statistic = Gauge(
                "agent_drift_statistic",
                "A drift monitor's chart statistic (CUSUM: the leading side, signed; EWMA: "
                "its value), in sigma of the batch mean.",
                labels,
                registry=registry,
            )
            self._limit = Gauge(
                "agent_drift_limit",
                "The chart's control limit (± this).",
                labels,
                registry=registry,
            )

    # -- the consumer ------------------------------------------------------------------

    def __call__(self, batch: Sequence[Committed]) -> None:
        with self._lock:
            for item in batch:
                try:
                    event = item.event
                    if isinstance(event, Event):
                        _on(self, event, item.run_id, float(item.ts))
                except Exception:
                    self.errors += 1
                    log.exception("drift monitor: cannot fold %s", getattr(item, "type", "?"))
            if self.clock() - self._saved_at >= self.save_every:
                self.save()

    def observe(self, agent: str, version: str, metric: str, value: float, ts: float) -> None:
        """Fold one observation from outside the journal's events (a judged sample's
        verdict on a production run: accuracy 1.0 or 0.0)."""
        with self._lock:
            self._observe(agent, version, metric, value, ts)

    # -- events ------------------------------------------------------------------------

    @_on.on(RunStarted)
    def _started(self, event: RunStarted, run_id: str | None, ts: float) -> None:
        if run_id is None:
            return
        if event.agent not in self.configs:
            self._other(run_id)
            return
        if len(self._runs) >= self.max_tracked:
            self._runs.popitem(last=False)
        self._runs[run_id] = _Run(event.agent, event.agent_version, ts)

    @_on.on(RunResumed)
    def _resumed(self, event: RunResumed, run_id: str | None, ts: float) -> None:
        if run_id is not None and event.agent and event.agent not in self.configs:
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
        observe = self._observe
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
        self._observe(found[0], found[1], "accuracy", value, ts)

    def _from_store(self, run_id: str) -> _Run | None:
        """A run this consumer did not see start (it began before a restart)."""
        try:
            row = get_run(self.db, run_id)
        except StewardError:
            return None
        if row.agent not in self.configs:
            return None
        return _Run(row.agent, row.agent_version, row.created_at, seen_start=False)

    def _remember(self, run_id: str, agent: str, version: str) -> None:
        if len(self._finished) >= self.max_tracked:
            self._finished.popitem(last=False)
        self._finished[run_id] = (agent, version)

    # -- series ------------------------------------------------------------------------

    def _observe(self, agent: str, version: str, metric: str, value: float, ts: float) -> None:
        config = self.configs.get(agent, {}).get(metric)
        if config is None:
            return
        key = (agent, version, metric)
        tracked = self._series.get(key)
        if tracked is None:
            tracked = self._series[key] = _Tracked(
                Series(config), self._previous(agent, version, ts), ts, 0.0
            )
        if self._replaying and ts <= tracked.through_ts:  # folded before the restart
            return
        tracked.through_ts = max(tracked.through_ts, ts)
        tracked.dirty = True
        alarm = tracked.series.observe(value)
        self._gauge(key, tracked.series)
        if alarm is not None:
            self._alarm(key, tracked, alarm, ts)

    def _previous(self, agent: str, version: str, ts: float) -> str:
        """The version of `agent` seen before `version` first appeared ("" if none)."""
        for (a, v, _), tracked in self._series.items():
            if a == agent and v == version:
                return tracked.previous_version
        latest = self._latest.get(agent)
        self._latest[agent] = (ts, version)
        return "" if latest is None or latest[1] == version else latest[1]

    def _gauge(self, key: Key, series: Series) -> None:
        if self._statistic is None or self._limit is None or series.warming:
            return
        with contextlib.suppress(Exception):
            self._statistic.labels(*key).set(series.statistic)
            self._limit.labels(*key).set(series.limit)

    def _alarm(self, key: Key, tracked: _Tracked, alarm: Alarm, ts: float) -> None:
        agent, version, _ = key
        event = DriftAlarmed(
            agent=agent,
            agent_version=version,
            metric=alarm.metric,
            chart=alarm.chart,
            direction=alarm.direction,
            statistic=alarm.statistic,
            limit=alarm.limit,
            baseline=alarm.baseline_mean,
            recent=alarm.recent_mean,
            observations=alarm.observations,
            previous_version=tracked.previous_version,
            webhook=self.webhooks.get(agent),
        )
        self.alarms.append(event)
        log.warning(
            "drift: %s %s %s went %s (%.4g -> %.4g)",
            agent, version, alarm.metric, alarm.direction, alarm.baseline_mean, alarm.recent_mean,
        )  # fmt: skip
        try:
            pending = save_alarm(self.db, self._row(key, tracked, self.clock()), event, ts)
        except Exception:
            self.errors += 1
            log.exception("drift monitor: cannot journal the alarm")
            return
        tracked.dirty = False
        if self.journal is not None:
            self.journal.publish([pending])  # metrics, webhooks: as for any commit

    def _row(self, key: Key, tracked: _Tracked, now: float) -> MonitorRow:
        return MonitorRow(
            key[0], key[1], key[2], _state(tracked.series), tracked.previous_version,
            tracked.first_seen, tracked.through_ts, now,
        )  # fmt: skip

    # -- state -------------------------------------------------------------------------

    def save(self) -> None:
        """Write the series changed since the last save."""
        with self._lock:
            now = self.clock()
            self._saved_at = now
            dirty = [(key, t) for key, t in self._series.items() if t.dirty]
            rows = [
                MonitorRow(
                    key[0],
                    key[1],
                    key[2],
                    _state(t.series),
                    t.previous_version,
                    t.first_seen,
                    t.through_ts,
                    now,
                )
                for key, t in dirty
            ]
            try:
                save_monitor_rows(self.db, rows)
            except Exception:
                self.errors += 1
                log.exception("drift monitor: cannot save its state")
                return
            for _, tracked in dirty:
                tracked.dirty = False

    def catch_up(self) -> int:
        """Load the saved series of the monitored agents, then fold the events committed
        after them (the last `max_catchup`); returns how many events were folded."""
        with self._lock:
            after: float | None = None
            loaded: set[str] = set()
            for row in load_monitor_rows(self.db):
                config = self.configs.get(row.agent, {}).get(row.metric)
                if config is None:  # no longer declared: kept on record, not followed
                    continue
                series = _series(config, row.state)
                key = (row.agent, row.version, row.metric)
                self._series[key] = _Tracked(
                    series, row.previous_version, row.first_seen, row.through_ts
                )
                self._gauge(key, series)
                latest = self._latest.get(row.agent)
                if latest is None or row.first_seen > latest[0]:
                    self._latest[row.agent] = (row.first_seen, row.version)
                loaded.add(row.agent)
                after = row.through_ts if after is None else min(after, row.through_ts)
            if set(self.configs) - loaded:
                after = 0.0  # an agent with nothing saved: its history, within the bound
            found, truncated = events_since(
                self.db, after or 0.0, sorted(ev.tag_of(t) for t in _on.handled), self.max_catchup
            )
            if truncated:
                log.warning(
                    "drift monitor: caught up on the last %d events only; older ones are "
                    "not in the charts",
                    self.max_catchup,
                )
            self._replaying = True
            try:
                for run_id, entry in found:
                    try:
                        _on(self, entry.event, run_id, entry.ts)
                    except Exception:
                        self.errors += 1
            finally:
                self._replaying = False
            self.save()
            return len(found)

    def close(self) -> None:
        self.save()


def _state(series: Series) -> dict[str, Any]:
    state = series.to_state()
    state["config"] = asdict(series.config)
    return state


def _series(config: SeriesConfig, state: dict[str, Any]) -> Series:
    """A saved series; one saved under another configuration (the spec's `monitors:`
    changed its chart, shift, ARL₀ or warm-up) starts over with a new warm-up."""
    if state.get("config") == asdict(config):
        return Series.from_state(config, state)
    return Series(config)


def install_monitor(
    db: Database,
    journal: Journal,
    specs: Iterable[AgentSpec],
    registry: CollectorRegistry | None = None,
) -> DriftMonitor | None:
    """A drift monitor for the agents whose spec declares `monitors:` (None if none
    does), caught up on the journal and subscribed to it. Close it after the journal."""
    declared = {s.name: s.monitors for s in specs if s.monitors is not None}
    if not declared:
        return None
    monitor = DriftMonitor(db, journal, declared, registry=registry)
    monitor.catch_up()
    journal.subscribe(monitor)
    return monitor
