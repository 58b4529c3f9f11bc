"""What `steward monitors show` and the console's drift page show: each monitored metric
of an agent as segments, one per version in the order they first ran, with the chart's
points, control limit and alarms, and the rollback command for the version a change
replaced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from steward.core.events import DriftAlarmed
from steward.core.times import rfc3339
from steward.monitor.series import Series, SeriesConfig
from steward.store.database import Database
from steward.store.monitors import load_monitor_rows, recent_alarm_events

__all__ = ["AgentMonitors", "MetricView", "Segment", "agent_monitors", "rollback_command"]


def rollback_command(agent: str, label: str = "production") -> str:
    """The command that moves `label` back to the version before (agents rollback)."""
    return f"steward agents rollback {agent} --label {label}"


@dataclass(frozen=True, slots=True)
class Segment:
    version: str
    previous_version: str
    first_seen: float
    chart: str
    warming: bool
    warm_count: int
    warmup: int
    baseline: float | None
    statistic: float
    limit: float
    batch: int
    observations: int
    alarms: int
    points: list[tuple[int, float]]
    alarm_points: list[int]  # every signal of the chart
    raised_points: list[int]  # the signals that raised an alarm (the first of an episode)


@dataclass(frozen=True, slots=True)
class MetricView:
    metric: str
    segments: list[Segment]

    @property
    def alarms(self) -> int:
        return sum(s.alarms for s in self.segments)


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    id: int
    ts: float
    version: str
    metric: str
    direction: str
    baseline: float
    recent: float
    previous_version: str
    rollback: str


@dataclass(frozen=True, slots=True)
class AgentMonitors:
    agent: str
    metrics: list[MetricView]
    alarms: list[AlarmRecord] = field(default_factory=list)

    @property
    def latest_version(self) -> str | None:
        """The version that first ran last (what a label points at now, or a canary)."""
        began: dict[str, float] = {}  # version -> its first observation of any metric
        for m in self.metrics:
            for s in m.segments:
                began[s.version] = min(began.get(s.version, s.first_seen), s.first_seen)
        return max(began, key=lambda v: began[v]) if began else None

    @property
    def alarmed(self) -> bool:
        """An alarm stands on the latest version (alarms of versions since replaced are
        history: listed, not marked)."""
        latest = self.latest_version
        return any(a.version == latest for a in self.alarms)

    def to_json(self) -> dict[str, Any]:
        """Times as RFC 3339 strings in UTC, as everywhere in the CLI's and API's JSON."""
        return {
            "agent": self.agent,
            "metrics": [
                {
                    "metric": m.metric,
                    "segments": [
                        {**asdict(s), "first_seen": rfc3339(s.first_seen)} for s in m.segments
                    ],
                }
                for m in self.metrics
            ],
            "alarms": [{**asdict(a), "ts": rfc3339(a.ts)} for a in self.alarms],
        }


def agent_monitors(db: Database, agent: str, *, alarms: int = 50) -> AgentMonitors:
    """The saved series of `agent` and its latest alarms."""
    by_metric: dict[str, list[Segment]] = {}
    for row in load_monitor_rows(db, agent):
        saved = row.state.get("config")
        config = SeriesConfig(**saved) if isinstance(saved, dict) else SeriesConfig(row.metric)
        series = Series.from_state(config, row.state)
        by_metric.setdefault(row.metric, []).append(
            Segment(
                version=row.version,
                previous_version=row.previous_version,
                first_seen=row.first_seen,
                chart=config.chart,
                warming=series.warming,
                warm_count=len(series.warm),
                warmup=config.warmup,
                baseline=series.baseline,
                statistic=series.statistic,
                limit=series.limit,
                batch=series.batch,
                observations=series.observations,
                alarms=series.alarms,
                points=series.points,
                alarm_points=series.alarm_points,
                raised_points=series.raised_points,
            )
        )
    records = []
    for entry in recent_alarm_events(db, agent, alarms):
        event = entry.event
        assert isinstance(event, DriftAlarmed)
        records.append(
            AlarmRecord(
                entry.id,
                entry.ts,
                event.agent_version,
                event.metric,
                event.direction,
                event.baseline,
                event.recent,
                event.previous_version,
                rollback_command(agent) if event.previous_version else "",
            )
        )
    order = {m: i for i, m in enumerate(("accuracy", "confidence", "escalation_rate",
                                          "denial_rate", "latency", "cost"))}  # fmt: skip
    began: dict[str, float] = {}  # a version runs from its first observation of any metric
    for segs in by_metric.values():
        for seg in segs:
            began[seg.version] = min(began.get(seg.version, seg.first_seen), seg.first_seen)
    metrics = [
        MetricView(m, sorted(segs, key=lambda s: began[s.version]))
        for m, segs in sorted(by_metric.items(), key=lambda kv: order.get(kv[0], 99))
    ]
    return AgentMonitors(agent, metrics, records)
