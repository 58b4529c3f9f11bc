"""The drift monitor: it follows the journal's committed events, in id order, and keeps
one control chart per agent, version and metric (series.py); it journals an alarm when one
signals.

    monitor = DriftMonitor(db, journal, {"support-desk": spec.monitors}, registry=registry)
    monitor.start()   # load the saved state, fold what committed since, follow the journal
    ...
    monitor.close()   # fold what is left, save

It reads committed rows from the store (as `steward telemetry follow` does, ids are
assigned at commit under the chain lock, so none appears behind one already read), not
the in-process commit stream: it sees every process's events (a CLI run, another server,
feedback posted to either), and the id of the last row it folded is an exact place
to go on from after a restart.

What each metric observes is observations.py's business. Judged samples (an evaluator's
verdict on a production run) feed accuracy through `observe(agent, version, "accuracy",
1.0 or 0.0, ts)`.

An alarm is a `monitor.alarm` event (DriftAlarmed), written in one transaction with the
charts' state and the cursor (store/monitors.py save_alarms), then published to the
journal's in-process consumers like any commit: the audit chain records it, telemetry
counts it (agent_drift_alarm_total) and posts it to the webhook (telemetry/alerts.py),
the console marks it. The chart restarts after an alarm.

State survives a restart: the charts that changed and the id of the last event folded
are saved together (tables monitor_state and monitor_cursor; at most every `save_every`
seconds, with each alarm, and at close). `start()` loads them and folds the events
committed since, at most the last `max_catchup` (a bounded start; what is older is left
out and logged). Saving beats recomputing from the whole journal: a CUSUM's state depends
on every observation since its last restart, so recomputing it is unbounded, while the
saved state plus the events after its cursor is exact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from steward.core.events import (
    DriftAlarmed,
)
from steward.monitor.observations import FOLDED, RunObserver
from steward.monitor.series import Alarm, Series, SeriesConfig
from steward.spec.models import AgentSpec, Monitors
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.monitors import (
    MonitorRow,
    head_event_id,
    load_cursor,
    load_monitor_rows,
    rows_after,
    save_alarms,
    save_monitor_rows,
)

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
class _Tracked:
    series: Series
    previous_version: str
    first_seen: float
    through_ts: float
    dirty: bool = False


class DriftMonitor:
    """Follows the journal (`start`, or `poll` / `drain` by hand) and keeps the charts."""

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
        name: str = "drift",
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
        self._runs = RunObserver(db, self.configs, self._observe, max_tracked=max_tracked)
        self.name = name
        self.cursor = 0  # id of the last journal row folded
        self._raised: list[DriftAlarmed] = []  # by the row being folded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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

    def poll(self, limit: int = 1000) -> int:
        """Fold the next committed rows (at most `limit`); returns how many were read."""
        with self._lock:
            rows = rows_after(self.db, self.cursor, FOLDED, limit)
            for row in rows:
                if row.event is not None:
                    try:
                        self._runs.fold(row.event, row.run_id, float(row.ts))
                    except Exception:
                        self.errors += 1
                        log.exception("drift monitor: cannot fold event %d", row.id)
                self.cursor = row.id
                if self._raised:  # with the whole row folded: the cursor is exact
                    self._journal_alarms(float(row.ts))
            if rows and self.clock() - self._saved_at >= self.save_every:
                self.save()
            return len(rows)

    def drain(self) -> int:
        """Fold everything committed so far; returns how many rows were read."""
        total = 0
        while count := self.poll():
            total += count
        return total

    def start(self, interval: float = 0.5) -> None:
        """Load the saved state, catch up, and follow the journal on a daemon thread."""
        self.load()
        self.drain()
        self._thread = threading.Thread(
            target=self._follow, args=(interval,), name="steward-drift", daemon=True
        )
        self._thread.start()

    def _follow(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                if self.poll() == 0:
                    self._stop.wait(interval)
            except Exception:  # the store is away: try again later
                self.errors += 1
                log.warning("drift monitor: cannot read the journal", exc_info=True)
                self._stop.wait(interval * 10)

    def observe(self, agent: str, version: str, metric: str, value: float, ts: float) -> None:
        """Fold one observation from outside the journal's events (a judged sample's
        verdict on a production run: accuracy 1.0 or 0.0)."""
        with self._lock:
            self._observe(agent, version, metric, value, ts)
            if self._raised:
                self._journal_alarms(ts)

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
        self._raised.append(event)

    def _journal_alarms(self, ts: float) -> None:
        """Commit the alarms raised with the charts and the cursor, then publish them."""
        alarms, self._raised = self._raised, []
        dirty = self._dirty()
        rows = [self._row(k, t, self.clock()) for k, t in dirty]
        try:
            pending = save_alarms(self.db, self.name, rows, self.cursor, alarms, ts)
        except Exception:
            self.errors += 1
            log.exception("drift monitor: cannot journal %d alarm(s)", len(alarms))
            return
        for _, t in dirty:
            t.dirty = False
        self._saved_at = self.clock()
        if self.journal is not None:
            self.journal.publish(pending)  # metrics, webhooks: as for any commit

    def _row(self, key: Key, tracked: _Tracked, now: float) -> MonitorRow:
        return MonitorRow(
            key[0], key[1], key[2], _state(tracked.series), tracked.previous_version,
            tracked.first_seen, tracked.through_ts, now,
        )  # fmt: skip

    # -- state -------------------------------------------------------------------------

    def _dirty(self) -> list[tuple[Key, _Tracked]]:
        return [(key, t) for key, t in self._series.items() if t.dirty]

    def save(self) -> None:
        """Write the charts changed since the last save, with the cursor."""
        with self._lock:
            now = self.clock()
            self._saved_at = now
            dirty = self._dirty()
            rows = [self._row(key, t, now) for key, t in dirty]
            try:
                save_monitor_rows(self.db, self.name, rows, self.cursor)
            except Exception:
                self.errors += 1
                log.exception("drift monitor: cannot save its state")
                return
            for _, tracked in dirty:
                tracked.dirty = False

    def load(self) -> None:
        """Load the saved charts of the monitored agents and where to go on from: the
        saved cursor, or (never saved, or too far behind) the last `max_catchup` events."""
        with self._lock:
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
            saved = load_cursor(self.db, self.name)
            floor = max(0, head_event_id(self.db) - self.max_catchup)
            if saved is not None and saved < floor:
                log.warning(
                    "drift monitor: %d events committed since it last ran; it folds the "
                    "last %d, the charts miss the others",
                    head_event_id(self.db) - saved,
                    self.max_catchup,
                )
            self.cursor = floor if saved is None else max(saved, floor)

    def close(self) -> None:
        """Stop following, fold what committed before, save."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        try:
            self.drain()
        except Exception:
            self.errors += 1
            log.warning("drift monitor: cannot read the journal at close", exc_info=True)
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
    does, or STEWARD_MONITORS=off: one server of several over a database runs them),
    caught up on the journal and following it. Close it after the journal."""
    if os.environ.get("STEWARD_MONITORS", "").strip().lower() == "off":
        return None
    declared = {s.name: s.monitors for s in specs if s.monitors is not None}
    if not declared:
        return None
    monitor = DriftMonitor(db, journal, declared, registry=registry)
    monitor.start()
    return monitor
