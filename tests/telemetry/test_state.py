"""The in-flight gauges read from the store at scrape time: counted per agent and
status in SQL, a series at 0 for every agent served, and `steward_store_up 0` (no
gauges, no error) when the store cannot answer."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from sqlalchemy import insert, text

from steward.store import Database
from steward.store.inflight import in_flight
from steward.store.schema import approvals, runs
from steward.telemetry.metrics import render
from steward.telemetry.state import register_state


def add_run(db: Database, run_id: str, agent: str, status: str) -> None:
    now = time.time()
    with db.writer.begin() as connection:
        connection.execute(
            insert(runs).values(id=run_id, agent=agent, agent_version="v1", status=status,
                                input="", created_at=now, updated_at=now)
        )  # fmt: skip


def add_approval(db: Database, approval_id: str, agent: str, status: str) -> None:
    now = time.time()
    with db.writer.begin() as connection:
        connection.execute(
            insert(approvals).values(
                id=approval_id, run_id="run_x", call_id="c", agent=agent, tool="t",
                arguments="{}", call_hash="h", status=status, requested_at=now,
                expires_at=now + 60,
            )
        )  # fmt: skip


def test_gauges_count_what_the_store_holds_in_flight(any_db: Database) -> None:
    for n, (agent, status) in enumerate(
        [("desk", "running"), ("desk", "waiting"), ("desk", "waiting"), ("desk", "queued"),
         ("desk", "succeeded"), ("billing", "waiting"), ("billing", "failed")]
    ):  # fmt: skip
        add_run(any_db, f"run_{n}", agent, status)
    for n, (agent, status) in enumerate(
        [("desk", "pending"), ("desk", "pending"), ("desk", "approved"), ("billing", "pending")]
    ):
        add_approval(any_db, f"apr_{n}", agent, status)
    registry = CollectorRegistry()
    register_state(registry, any_db, agents=["desk", "idle"])

    def value(name: str, agent: str) -> float | None:
        return registry.get_sample_value(name, {"agent_name": agent})

    assert (value("agent_active_runs", "desk"), value("agent_active_runs", "billing")) == (1, 0)
    assert (value("agent_waiting_runs", "desk"), value("agent_waiting_runs", "billing")) == (2, 1)
    assert value("agent_queued_runs", "desk") == 1
    assert value("agent_approvals_pending", "desk") == 2
    assert value("agent_approvals_pending", "billing") == 1
    for name in ("agent_active_runs", "agent_waiting_runs", "agent_approvals_pending"):
        assert value(name, "idle") == 0  # served, nothing in flight: 0, not a gap
    assert registry.get_sample_value("steward_store_up") == 1
    assert in_flight(any_db).runs_in_flight == 5


def test_a_store_that_cannot_answer_gives_store_up_0_not_an_error(sqlite_db: Database) -> None:
    registry = CollectorRegistry()
    register_state(registry, sqlite_db, agents=["desk"])
    with sqlite_db.writer.begin() as connection:
        connection.execute(text("DROP TABLE approvals"))
    exposition = render(registry).decode()  # does not raise
    assert registry.get_sample_value("steward_store_up") == 0
    assert "agent_approvals_pending{" not in exposition
    assert "agent_active_runs{" not in exposition
    assert "steward_build_info{" in exposition
