"""Fleet figures in SQL (store/stats.py): the same numbers the rows give, computed in the
database from the call_facts projection and runs.latency_ms; migration 0014 backfills a
store that had runs before it. On both stores."""

from __future__ import annotations

import random
import time

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from steward.core.decision import Decision, Reason, Verdict
from steward.core.events import (
    ApprovalRequested,
    FeedbackGiven,
    GateDecided,
    RunFinished,
    RunStarted,
    RunStatus,
    ToolSucceeded,
)
from steward.store import Database, Journal
from steward.store.database import _alembic_config
from steward.store.schema import call_facts, cost_days, cost_ledger, runs
from steward.store.stats import Scope, agent_stats, percentile, run_latency, tool_latency

NOW = 2_000_000_000.0
OUTCOMES = [RunStatus.SUCCEEDED] * 6 + [RunStatus.ESCALATED, RunStatus.FAILED, None]


def _fill(db: Database, n: int = 40, seed: int = 7) -> dict[str, object]:
    """Runs of `desk` (and one of `other`), with what each should count for."""
    rng = random.Random(seed)
    expected: dict[str, object] = {"run_ms": [], "tools": {}, "statuses": {}, "with_person": 0}
    journal = Journal(db)
    try:
        # a run created before the window: none of its figures count
        journal.append("old", RunStarted("desk", "v1", "old"), ts=NOW - 7200)
        journal.append("old", ToolSucceeded("k", "lookup", {}, 999.0, 1), ts=NOW - 10)
        journal.append("old", RunFinished(RunStatus.SUCCEEDED, "x"), ts=NOW - 5)
        journal.append("o1", RunStarted("other", "v1", "hi"), ts=NOW - 50)
        journal.append("o1", ToolSucceeded("k", "lookup", {}, 5.0, 1), ts=NOW - 49)
        for i in range(n):
            run_id, start = f"r{i}", NOW - 3000 + i * 17.25
            outcome = OUTCOMES[i % len(OUTCOMES)]
            journal.append(
                run_id, RunStarted("desk", "v1", f"order {i}", {"tenant": "acme"}), ts=start
            )
            for c in range(i % 3):
                tool, ms = ("lookup", "refund")[c], rng.uniform(1, 500)
                cost = 0.01 * c  # the refund tool costs: ledger rows and their day's sums
                journal.append(run_id, ToolSucceeded(f"k{c}", tool, {}, ms, 1, cost_usd=cost),
                               ts=start + 1)  # fmt: skip
                expected["tools"].setdefault(tool, []).append(ms)  # type: ignore[union-attr]
            if i % 5 == 0:
                rule = ("refund-limit", "pii")[i % 2]
                deny = Decision(Verdict.DENY, (Reason("policy.deny", "no"),), (rule,))
                journal.append(run_id, GateDecided("k9", "refund", "policy", deny), ts=start + 1)
            if i % 4 == 0:
                journal.append(run_id, ApprovalRequested(f"apr{i}", "desk", f"{run_id}:k", "refund",
                               {}, "h", NOW + 3600, "review"), ts=start + 2)  # fmt: skip
            status = "running" if outcome is None else outcome.value
            statuses = expected["statuses"]
            statuses[status] = statuses.get(status, 0) + 1  # type: ignore[union-attr]
            if outcome is not None:
                took = rng.uniform(0.5, 30)
                journal.append(run_id, RunFinished(outcome, f"answer {i}"), ts=start + took)
                expected["run_ms"].append(((start + took) - start) * 1000)  # type: ignore[union-attr]
                if outcome is RunStatus.SUCCEEDED and i % 4 == 0:
                    expected["with_person"] = int(expected["with_person"]) + 1  # type: ignore[arg-type]
        journal.append("r0", FeedbackGiven("incorrect", "qa", "fix"), ts=NOW - 1)
        journal.flush_sync()
    finally:
        journal.close()
    return expected


def test_stats_are_the_figures_of_the_rows(any_db: Database) -> None:
    expected = _fill(any_db)
    stats = agent_stats(any_db, "desk", 3600, now=NOW)
    assert stats.statuses == expected["statuses"]
    assert stats.with_person == expected["with_person"]
    run_ms: list[float] = expected["run_ms"]  # type: ignore[assignment]
    assert stats.run_latency.n == len(run_ms)
    for got, pct in zip((stats.run_latency.p50, stats.run_latency.p95, stats.run_latency.p99),
                        (0.5, 0.95, 0.99), strict=True):  # fmt: skip
        assert got is not None and abs(got - (percentile(run_ms, pct) or 0)) < 1e-6
    tools: dict[str, list[float]] = expected["tools"]  # type: ignore[assignment]
    assert set(stats.tool_latency) == set(tools)
    for tool, values in tools.items():
        figures = stats.tool_latency[tool]
        assert figures.n == len(values)
        assert abs((figures.p95 or 0) - (percentile(values, 0.95) or 0)) < 1e-9
    assert stats.judged == 1 and stats.accuracy is not None
    # all agents: the other agent's run and tool call count too
    everyone = Scope(NOW - 3600)
    with any_db.reader.connect() as connection:
        assert tool_latency(connection, everyone)["lookup"].n == len(tools["lookup"]) + 1
        assert run_latency(connection, Scope(NOW - 3600, agent="nobody")).n == 0


def test_the_ledger_by_day_is_the_ledger_summed(any_db: Database) -> None:
    _fill(any_db)
    with any_db.reader.connect() as connection:
        ledger = connection.execute(
            select(cost_ledger.c.agent, cost_ledger.c.day, cost_ledger.c.model, func.count(),
                   func.sum(cost_ledger.c.cost_usd))
            .group_by(cost_ledger.c.agent, cost_ledger.c.day, cost_ledger.c.model)
        ).all()  # fmt: skip
        days = connection.execute(
            select(cost_days.c.agent, cost_days.c.day, cost_days.c.model, cost_days.c.calls,
                   cost_days.c.cost_usd)
        ).all()  # fmt: skip
    assert ledger and len(ledger) == len(days)
    for summed, kept in zip(sorted(map(tuple, ledger)), sorted(map(tuple, days)), strict=True):
        assert summed[:4] == kept[:4] and summed[4] == pytest.approx(kept[4])


def test_denials_are_projected_by_rule(any_db: Database) -> None:
    _fill(any_db)
    with any_db.reader.connect() as connection:
        by_rule = dict(
            connection.execute(
                select(call_facts.c.name, func.count())
                .where(call_facts.c.kind == "deny")
                .group_by(call_facts.c.name)
            ).all()
        )
    assert by_rule == {"refund-limit": 4, "pii": 4}


def _before_0014() -> str:
    script = ScriptDirectory.from_config(_alembic_config())
    down = script.get_revision("0014").down_revision
    assert isinstance(down, str)
    return down


def test_migration_0014_backfills_facts_latency_and_search(any_db: Database) -> None:
    config = _alembic_config()
    from alembic import command

    with any_db.writer.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, _before_0014())
    deny = (
        '{"decision":{"reasons":[{"code":"scan.injection","message":"m"}],"risk":0.0,'
        '"rule_ids":[],"verdict":"deny"},"key":"k","stage":"scan","tool":"t","type":"gate.decided"}'
    )
    allow = deny.replace('"deny"}', '"allow"}')
    done = (
        '{"attempts":1,"cost_usd":0.0,"key":"k","latency_ms":12.5,"result":{},'
        '"tool":"lookup","type":"tool.succeeded"}'
    )
    now = time.time()
    with any_db.writer.begin() as connection:
        connection.execute(
            text("INSERT INTO runs (id, agent, agent_version, status, input, output, reason_code,"
                 " reason, steps, tags, created_at, updated_at, finished_at) VALUES"
                 " ('r1', 'desk', 'v1', 'succeeded', 'where is my parcel', 'it shipped', '', '', 1,"
                 " '{}', :c, :f, :f)"),
            {"c": now - 2.0, "f": now},
        )  # fmt: skip
        for i, data in enumerate((deny, allow, done), start=1):
            kind = "gate.decided" if "gate" in data else "tool.succeeded"
            connection.execute(
                text("INSERT INTO events (id, run_id, type, ts, data, prev_hash, hash)"
                     " VALUES (:i, 'r1', :t, :ts, :d, '', '')"),
                {"i": i, "t": kind, "ts": now - 1, "d": data},
            )  # fmt: skip
    any_db.migrate()
    with any_db.reader.connect() as connection:
        facts = connection.execute(
            select(call_facts.c.kind, call_facts.c.name, call_facts.c.value, call_facts.c.agent)
            .order_by(call_facts.c.id)
        ).all()  # fmt: skip
        latency = connection.execute(select(runs.c.latency_ms)).scalar_one()
    assert sorted(tuple(f) for f in facts) == [("deny", "scan.injection", 0.0, "desk"),
                                               ("tool", "lookup", 12.5, "desk")]  # fmt: skip
    assert abs(latency - 2000.0) < 1e-3
    from steward.store.runs import list_runs
    from steward.store.search import RunFilter

    assert [r.id for r in list_runs(any_db, where=RunFilter("parcel"))] == ["r1"]
