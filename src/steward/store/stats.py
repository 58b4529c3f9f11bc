"""Latency and outcome figures of an agent (or of all agents) over a time window, and the
maturity stage they meet (proof of concept, limited production, full production).

Everything is aggregated in SQL with constant memory: counts by status from an index,
percentiles by walking an index on the value (LIMIT 2 OFFSET rank: only the rows at the
ranks wanted come back), tool latencies and denials from the `call_facts` projection
(never the journal's JSON). `steward stats` and the console's
overview pages (server/console/pages_overview.py) read these same functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from steward.store.database import Database
from steward.store.feedback import accuracy, verdicts_of
from steward.store.schema import approvals, call_facts, cost_days, events, runs

PERCENTILES = (0.5, 0.95, 0.99)
DAY = 86400


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ranks(n: int, pct: float) -> tuple[int, int, float]:
    """The two 0-based ranks a percentile interpolates between, and the fraction."""
    rank = (n - 1) * pct
    low = int(rank)
    return low, min(low + 1, n - 1), rank - low


@dataclass(frozen=True, slots=True)
class Latency:
    """How many values, and their percentiles (linear interpolation between ranks)."""

    n: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "p50": self.p50, "p95": self.p95, "p99": self.p99}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which runs: one agent's (or all agents', `agent=None`) created in [since, until)."""

    since: float
    until: float | None = None
    agent: str | None = None

    def runs(self, *, walk: bool = False) -> list[ColumnElement[bool]]:
        """Conditions on runs. `walk`: for a walk of another index in order (percentiles),
        the time bounds are written `created_at + 0` so that no planner takes an index on
        created_at instead and sorts (SQLite's, after ANALYZE, would)."""
        created: ColumnElement[float] = runs.c.created_at + 0 if walk else runs.c.created_at
        where = [created >= self.since]
        if self.until is not None:
            where.append(created < self.until)
        if self.agent is not None:
            where.append(runs.c.agent == self.agent)
        return where

    def facts(self, kind: str) -> list[ColumnElement[bool]]:
        where = [call_facts.c.kind == kind, call_facts.c.run_created >= self.since,
                 call_facts.c.ts >= self.since]  # fmt: skip
        if self.until is not None:
            where.append(call_facts.c.run_created < self.until)
        if self.agent is not None:
            where.append(call_facts.c.agent == self.agent)
        return where

    @property
    def first_day(self) -> int:
        return int(self.since // DAY)


def percentiles(
    connection: Connection,
    value: ColumnElement[Any],
    where: Sequence[ColumnElement[bool]],
    n: int,
    pcts: Sequence[float] = PERCENTILES,
) -> list[float | None]:
    """Percentiles of `value` over the `n` rows matching `where`, in the database: for each,
    the two rows at its ranks in value order (LIMIT 2 OFFSET rank), walking an index on
    the value when there is one (ix_runs_*latency, ix_call_facts_*): nothing is sorted,
    nothing fetched but those rows."""
    if n == 0:
        return [None for _ in pcts]
    query = select(value).where(value.is_not(None), *where)
    found: list[float | None] = []
    for p in pcts:
        low, high, frac = _ranks(n, p)
        # walk from the nearer end: a p99 steps over 1% of the rows, not 99%
        if low < n - 1 - high:
            pair = connection.execute(query.order_by(value).limit(2).offset(low)).scalars()
            at = [float(v) for v in pair]
            at_low, at_high = at[0], at[-1] if high > low else at[0]
        else:
            pair = connection.execute(
                query.order_by(value.desc()).limit(2).offset(n - 1 - high)
            ).scalars()
            at = [float(v) for v in pair]
            at_high, at_low = at[0], at[-1] if high > low else at[0]
        found.append(at_low + (at_high - at_low) * frac)
    return found


def _count(
    connection: Connection, value: ColumnElement[Any], where: Sequence[ColumnElement[bool]]
) -> int:
    query = select(func.count()).where(value.is_not(None), *where)
    return int(connection.execute(query).scalar_one())


def statuses(connection: Connection, scope: Scope) -> dict[str, int]:
    query = select(runs.c.status, func.count()).where(*scope.runs()).group_by(runs.c.status)
    return {status: int(n) for status, n in connection.execute(query)}


def run_latency(connection: Connection, scope: Scope) -> Latency:
    """Run latency (created to finished), from runs.latency_ms in index order."""
    n = _count(connection, runs.c.latency_ms, scope.runs())
    p50, p95, p99 = percentiles(connection, runs.c.latency_ms, scope.runs(walk=True), n)
    return Latency(n, p50, p95, p99)


def tool_latency(connection: Connection, scope: Scope) -> dict[str, Latency]:
    """Each tool's latency of succeeded calls, from call_facts in index order."""
    where = scope.facts("tool")
    counts = connection.execute(
        select(call_facts.c.name, func.count()).where(*where).group_by(call_facts.c.name)
    ).all()
    found: dict[str, Latency] = {}
    for tool, n in sorted(counts):
        mine = [*where, call_facts.c.name == tool]
        p50, p95, p99 = percentiles(connection, call_facts.c.value, mine, int(n))
        found[tool] = Latency(int(n), p50, p95, p99)
    return found


def with_person(connection: Connection, scope: Scope) -> int:
    """Succeeded runs in scope that asked a person: runs.asked counts the approvals each
    requested (projected with approval.requested, so always within the run's life)."""
    query = select(func.count()).where(*scope.runs(), runs.c.status == "succeeded",
                                       runs.c.asked > 0)  # fmt: skip
    return int(connection.execute(query).scalar_one())


def spend(connection: Connection, scope: Scope) -> tuple[float, int]:
    """Spend since the scope's first day (the cost ledger is by day) and the finished runs
    it is divided by: cost per transaction, as `steward costs` computes it."""
    costs = select(func.coalesce(func.sum(cost_days.c.cost_usd), 0.0)).where(
        cost_days.c.day >= scope.first_day
    )
    # latency_ms is set with finished_at: the count is read from ix_runs_*latency alone
    finished = select(func.count()).where(
        runs.c.latency_ms.is_not(None), runs.c.created_at >= scope.first_day * DAY
    )
    if scope.until is not None:  # whole days: the ledger is by day
        costs = costs.where(cost_days.c.day <= int(scope.until // DAY))
        finished = finished.where(runs.c.created_at < scope.until)
    if scope.agent is not None:
        costs = costs.where(cost_days.c.agent == scope.agent)
        finished = finished.where(runs.c.agent == scope.agent)
    return float(connection.execute(costs).scalar_one()), int(
        connection.execute(finished).scalar_one()
    )


class Rates:
    """Rates over the runs that finished or wait (transactions), for AgentStats and
    Overview: both carry `statuses` (runs by status) and `with_person`."""

    __slots__ = ()
    statuses: dict[str, int]
    with_person: int

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


@dataclass(slots=True)
class AgentStats(Rates):
    agent: str
    window_seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    run_latency: Latency = field(default_factory=Latency)
    tool_latency: dict[str, Latency] = field(default_factory=dict)
    with_person: int = 0
    cost_per_transaction: float | None = None
    accuracy: float | None = None  # share of judged runs marked correct (feedback)
    judged: int = 0

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


def judged_runs(connection: Connection, scope: Scope) -> dict[str, str]:
    """The latest verdict of each judged run in scope (feedback events are few)."""
    in_scope = select(runs.c.id).where(runs.c.id == events.c.run_id, *scope.runs()).exists()
    return verdicts_of(connection, events, [in_scope])


def agent_stats(
    db: Database, agent: str, window_seconds: float = 86400.0, now: float | None = None
) -> AgentStats:
    moment = time.time() if now is None else now
    scope = Scope(moment - window_seconds, agent=agent)
    stats = AgentStats(agent, window_seconds)
    with db.reader.connect() as connection:
        stats.statuses = statuses(connection, scope)
        stats.run_latency = run_latency(connection, scope)
        stats.tool_latency = tool_latency(connection, scope)
        stats.with_person = with_person(connection, scope)
        verdicts = judged_runs(connection, scope)
        # cost is by ledger day: the days the window touches, today included
        days = max(1, int(window_seconds // DAY) + 1)
        total, finished = spend(connection, Scope((int(moment // DAY) - days + 1) * DAY,
                                                  agent=agent))  # fmt: skip
    stats.judged = len(verdicts)
    stats.accuracy = accuracy(verdicts, stats.statuses.get("succeeded", 0))
    stats.cost_per_transaction = None if finished == 0 else total / finished
    return stats


@dataclass(frozen=True, slots=True)
class Overview(Rates):
    """The fleet's figures for the overview pages, one agent's or all agents'."""

    scope: Scope
    days: list[int]  # UTC day numbers from the first to the last of the range
    outcomes: dict[int, dict[str, int]]  # day -> status -> runs created that day
    statuses: dict[str, int]
    run_latency: Latency
    tool_latency: dict[str, Latency]
    cost_by_day: dict[int, float]
    cost_total: float
    finished: int
    with_person: int
    denials: dict[str, int]  # rule -> denied calls
    pending: int  # approvals waiting now (of the agent, or all)
    decision_seconds: Latency  # requested to decided, approvals decided in the range

    @property
    def cost_per_transaction(self) -> float | None:
        return None if self.finished == 0 else self.cost_total / self.finished


def overview(db: Database, scope: Scope, now: float | None = None) -> Overview:
    """Everything the overview pages chart, with the same queries as `steward stats`
    plus groupings by day: every figure aggregated in SQL over indexes."""
    moment = time.time() if now is None else now
    # the last day with a moment in range (an `until` at midnight ends the day before)
    last = int((moment if scope.until is None else min(scope.until - 1e-6, moment)) // DAY)
    days = list(range(scope.first_day, max(last, scope.first_day) + 1))
    cost_day = select(cost_days.c.day, func.sum(cost_days.c.cost_usd)).where(
        cost_days.c.day >= scope.first_day, cost_days.c.day <= last
    )
    if scope.agent is not None:
        cost_day = cost_day.where(cost_days.c.agent == scope.agent)
    denied = select(call_facts.c.name, func.count()).where(*scope.facts("deny"))
    waiting = select(func.count()).where(approvals.c.status == "pending")
    decided = [approvals.c.decided_at.is_not(None), approvals.c.status != "pending",
               approvals.c.requested_at >= scope.since]  # fmt: skip
    if scope.until is not None:
        decided.append(approvals.c.requested_at < scope.until)
    if scope.agent is not None:
        waiting = waiting.where(approvals.c.agent == scope.agent)
        decided.append(approvals.c.agent == scope.agent)
    took = approvals.c.decided_at - approvals.c.requested_at
    with db.reader.connect() as connection:
        # a count per day and status, each a range of ix_runs_(agent_)status(_asked): no
        # sort, where one GROUP BY day, status sorts every run of the range
        every = statuses(connection, scope)
        outcomes: dict[int, dict[str, int]] = {}
        for day in days:
            start = max(day * DAY, scope.since)
            end = (day + 1) * DAY if scope.until is None else min((day + 1) * DAY, scope.until)
            within = Scope(start, end, scope.agent).runs()
            for status in every:
                n = connection.execute(
                    select(func.count()).where(runs.c.status == status, *within)
                ).scalar_one()
                if n:
                    outcomes.setdefault(day, {})[status] = int(n)
        costs = {
            int(d): float(c or 0.0)
            for d, c in connection.execute(cost_day.group_by(cost_days.c.day))
        }
        spent, finished = spend(connection, scope)
        n_decided = _count(connection, took, decided)
        p50, p95, p99 = percentiles(connection, took, decided, n_decided)
        return Overview(
            scope=scope, days=days, outcomes=outcomes, statuses=every,
            run_latency=run_latency(connection, scope),
            tool_latency=tool_latency(connection, scope), cost_by_day=costs, cost_total=spent,
            finished=finished, with_person=with_person(connection, scope),
            denials={rule: int(n) for rule, n in connection.execute(
                denied.group_by(call_facts.c.name).order_by(func.count().desc()))},
            pending=int(connection.execute(waiting).scalar_one()),
            decision_seconds=Latency(n_decided, p50, p95, p99),
        )  # fmt: skip
