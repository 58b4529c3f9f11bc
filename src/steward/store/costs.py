"""Reading the cost ledger: spend reports."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from steward.store.database import Database
from steward.store.schema import cost_days, runs


@dataclass(frozen=True, slots=True)
class CostRow:
    agent: str
    model: str
    day: str
    tenant: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated: int = 0  # calls whose tokens were counted locally (the provider said none)


@dataclass(frozen=True, slots=True)
class CostReport:
    rows: list[CostRow]
    runs_by_agent: dict[str, int]

    def total(self, agent: str | None = None) -> float:
        return sum(r.cost_usd for r in self.rows if agent is None or r.agent == agent)

    def per_transaction(self, agent: str) -> float | None:
        runs_done = self.runs_by_agent.get(agent, 0)
        return None if runs_done == 0 else self.total(agent) / runs_done


def cost_report(
    db: Database, *, days: int = 7, agent: str | None = None, now: float | None = None
) -> CostReport:
    """Spend by agent, model, day and tenant tag over the last `days` days."""
    first_day = int((now if now is not None else time.time()) // 86400) - days + 1
    # the ledger's sums per (agent, model, day, tags), kept as its rows are written: a
    # row per group is read, however many calls there were
    sums = cost_days.c
    query = select(
        sums.agent, sums.model, sums.day, sums.tags, sums.calls, sums.input_tokens,
        sums.output_tokens, sums.cost_usd, sums.estimated,
    ).where(sums.day >= first_day)  # fmt: skip
    finished = (
        select(runs.c.agent, func.count())
        .where(runs.c.finished_at.is_not(None), runs.c.created_at >= first_day * 86400)
        .group_by(runs.c.agent)
    )
    if agent:
        query = query.where(sums.agent == agent)
        finished = finished.where(runs.c.agent == agent)
    merged: dict[tuple[str, str, int, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    with db.reader.connect() as connection:
        for (
            name,
            model,
            day,
            tags,
            calls,
            tokens_in,
            tokens_out,
            cost,
            guessed,
        ) in connection.execute(query):
            tenant = str(json.loads(tags or "{}").get("tenant", "-"))
            totals = merged[(name, model, int(day), tenant)]
            totals[0] += calls
            totals[1] += tokens_in or 0
            totals[2] += tokens_out or 0
            totals[3] += cost or 0.0
            totals[4] += guessed or 0
        counts = {name: int(n) for name, n in connection.execute(finished)}
    rows = [
        CostRow(
            name,
            model,
            time.strftime("%Y-%m-%d", time.gmtime(day * 86400)),
            tenant,
            int(t[0]),
            int(t[1]),
            int(t[2]),
            float(t[3]),
            int(t[4]),
        )
        for (name, model, day, tenant), t in sorted(merged.items())
    ]
    return CostReport(rows, counts)
