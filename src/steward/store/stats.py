"""Latency and outcome figures of an agent over a time window, and the maturity stage
they meet (proof of concept, limited production, full production)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from steward.store.costs import cost_report
from steward.store.database import Database
from steward.store.feedback import accuracy, latest_verdicts
from steward.store.schema import approvals, events, runs


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class AgentStats:
    agent: str
    window_seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    run_latency_ms: list[float] = field(default_factory=list)
    tool_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    with_person: int = 0
    cost_per_transaction: float | None = None
    accuracy: float | None = None  # share of judged runs marked correct (feedback)
    judged: int = 0

    @property
    def transactions(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in {"running", "queued"})

    def rate(self, count: int) -> float | None:
        return None if self.transactions == 0 else count / self.transactions

    @property
    def automation_rate(self) -> float | None:
        autonomous = self.statuses.get("succeeded", 0) - self.with_person
        return self.rate(max(autonomous, 0))

    @property
    def escalation_rate(self) -> float | None:
        return self.rate(self.statuses.get("escalated", 0))

    @property
    def availability(self) -> float | None:
        failed = self.rate(self.statuses.get("failed", 0))
        return None if failed is None else 1.0 - failed

    def stage(self) -> tuple[str, str]:
        """The maturity stage met (by accuracy and escalation rate), and why."""
        if self.transactions == 0:
            return "none", "no runs in the window"
        if self.accuracy is None:
            return (
                "unplaced",
                "accuracy is unmeasured: flag incorrect outputs as feedback to measure it",
            )
        escalation = self.escalation_rate or 0.0
        if self.accuracy > 0.92 and escalation < 0.10:
            return "limited production", (
                "full production also needs 99.5% availability and drift monitoring, which is not configured"
            )
        if self.accuracy > 0.85:
            return "proof of concept", "limited production needs >92% accuracy and <10% escalation"
        return "below proof of concept", "proof of concept needs >85% accuracy"


def agent_stats(
    db: Database, agent: str, window_seconds: float = 86400.0, now: float | None = None
) -> AgentStats:
    moment = time.time() if now is None else now
    since = moment - window_seconds
    stats = AgentStats(agent, window_seconds)
    run_query = select(runs.c.id, runs.c.status, runs.c.created_at, runs.c.finished_at).where(
        runs.c.agent == agent, runs.c.created_at >= since
    )
    with db.reader.connect() as connection:
        run_ids: list[str] = []
        for run_id, status, created, finished in connection.execute(run_query):
            run_ids.append(run_id)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if finished is not None:
                stats.run_latency_ms.append((finished - created) * 1000)
        people = select(approvals.c.run_id).where(
            approvals.c.agent == agent, approvals.c.requested_at >= since
        )
        asked = {row[0] for row in connection.execute(people)}
        done = select(runs.c.id).where(
            runs.c.agent == agent, runs.c.created_at >= since, runs.c.status == "succeeded"
        )
        stats.with_person = sum(1 for row in connection.execute(done) if row[0] in asked)
        wanted = set(run_ids)
        for data, run_id in connection.execute(select(events.c.data, events.c.run_id).where(
            events.c.type == "tool.succeeded", events.c.ts >= since
        )):  # fmt: skip
            if run_id in wanted:
                body = json.loads(data)
                stats.tool_latency_ms.setdefault(body["tool"], []).append(float(body["latency_ms"]))
    verdicts = latest_verdicts(db, run_ids)
    stats.judged = len(verdicts)
    stats.accuracy = accuracy(verdicts, stats.statuses.get("succeeded", 0))
    stats.cost_per_transaction = cost_report(db, days=max(1, int(window_seconds // 86400) + 1), agent=agent,
                                             now=moment).per_transaction(agent)  # fmt: skip
    return stats
