"""Stopping the server is not ending a run: a run in flight when the server stops stays
`running` with what it recorded, a run waiting for a slot stays `queued`, and the next
server drives both to the end. A decision nobody acted on is picked up by the sweeper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from steward.runtime import AgentRuntime, build_agent
from steward.security.keys import Role
from steward.server import create_app
from steward.spec import load_spec_text
from steward.store import Database
from steward.store.approvals import decide_approval, list_approvals
from steward.store.keys import create_key
from steward.store.runs import get_run, read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: slowpoke
model: scripted
tools: [look_up]
decision_authority:
  autonomous: [look_up]
limits:
  max_concurrent_runs: 1
  max_run_seconds: 120
  tool_timeout_seconds: 90
"""
HOLD = {"seconds": 60.0}
CALLS: list[str] = []


@tool(effect="read")
async def look_up(order: str) -> dict[str, Any]:
    """Look an order up (slowly, while HOLD says so)."""
    CALLS.append(order)
    for _ in range(int(HOLD["seconds"] * 100)):
        if HOLD["seconds"] <= 0:  # released
            break
        await asyncio.sleep(0.01)
    return {"order": order, "status": "shipped"}


def slowpoke() -> AgentRuntime:
    script = [calls(("look_up", {"order": "10042"})), final("Order 10042 has shipped.", 0.9)]
    return build_agent(
        load_spec_text(SPEC, "slowpoke.yaml"), [look_up], model=ScriptedModel(script)
    )


@dataclass
class World:
    url: str
    db: Database
    headers: dict[str, str]

    def start(self, client: TestClient, text: str) -> httpx.Response:
        return client.post(
            "/v1/runs", json={"agent": "slowpoke", "input": text}, headers=self.headers
        )

    def wait_for(self, client: TestClient, run_id: str, status: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while (body := client.get(f"/v1/runs/{run_id}", headers=self.headers).json()).get(
            "status"
        ) != status:
            assert time.monotonic() < deadline, body
            time.sleep(0.02)
        found: dict[str, Any] = body
        return found

    def start_and_wait_for_the_tool(self, client: TestClient) -> str:
        run_id: str = self.start(client, "where is 10042?").json()["id"]
        deadline = time.monotonic() + 10
        while not CALLS:
            assert time.monotonic() < deadline, "the tool was never called"
            time.sleep(0.01)
        return run_id


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A database with an admin key; the slowpoke's tool holds for 60 s until released."""
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    monkeypatch.setitem(HOLD, "seconds", 60.0)
    CALLS.clear()
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    token = create_key(db, name="ops", role=Role.ADMIN, by="test")[1]
    headers = {"Authorization": f"Bearer {token}"}
    yield World(url, db, headers)
    db.close()


def test_a_run_in_flight_survives_a_server_stop_and_finishes_after_restart(
    world: World,
) -> None:
    url, db = world.url, world.db

    first = create_app(url, [slowpoke()], grace_seconds=0.2)
    with TestClient(first) as client:
        run_id = world.start_and_wait_for_the_tool(client)
    assert get_run(db, run_id).status == "running"  # stopped, not cancelled or failed
    assert not [e for e in read_journal(db, run_id) if e.type in {"run.finished", "tool.failed"}]

    HOLD["seconds"] = 0.0
    with TestClient(create_app(url, [slowpoke()])) as client:
        body = world.wait_for(client, run_id, "succeeded")
    assert body["output"] == "Order 10042 has shipped."
    resumed = [e.event for e in read_journal(db, run_id) if e.type == "run.resumed"]
    assert [r.reason for r in resumed] == ["recovered after a server restart"]  # type: ignore[union-attr]
    assert CALLS == ["10042", "10042"]  # a read is simply asked again


def test_a_sweep_takes_over_a_run_nobody_leases_only_where_leases_are_shared(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server already up when another process leaves a run `running` (it stopped): on
    PostgreSQL the first server's sweep takes the run over (nobody holds its lease); on
    SQLite (one server per database, no lease another process could show) the sweep
    leaves it, since a `steward run` on the same file may be driving it."""
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    monkeypatch.setitem(HOLD, "seconds", 60.0)
    CALLS.clear()
    token = create_key(any_db, name="ops", role=Role.ADMIN, by="test")[1]
    world = World(any_db.url, any_db, {"Authorization": f"Bearer {token}"})
    sweeper = create_app(any_db.url, [slowpoke()], sweep_seconds=0.1)
    with TestClient(sweeper) as client:
        other = create_app(any_db.url, [slowpoke()], grace_seconds=0.2, recover=False)
        with TestClient(other) as elsewhere:
            run_id = world.start_and_wait_for_the_tool(elsewhere)
            time.sleep(0.5)  # five sweeps while the other process drives it: left to it
        assert get_run(any_db, run_id).status == "running"
        HOLD["seconds"] = 0.0
        if any_db.dialect == "postgresql":
            world.wait_for(client, run_id, "succeeded")
        else:
            time.sleep(1.0)  # ten sweeps
            assert get_run(any_db, run_id).status == "running"
    resumed = [e.event for e in read_journal(any_db, run_id) if e.type == "run.resumed"]
    if any_db.dialect == "postgresql":
        assert [r.reason for r in resumed] == ["taken over from a process that stopped"]  # type: ignore[union-attr]
        assert CALLS == ["10042", "10042"]
    else:
        assert resumed == [] and CALLS == ["10042"]


def test_a_store_fault_in_a_sweep_drives_nothing_and_the_next_sweep_takes_over(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the store cannot say who holds leases, the sweep drives no run (fail closed)
    and the server goes on sweeping; once it can, the run nobody leases is taken over."""
    from steward.core.errors import StoreUnavailable
    from steward.store.leases import RunLeases

    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    monkeypatch.setitem(HOLD, "seconds", 60.0)
    CALLS.clear()
    token = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
    world = World(postgres_db.url, postgres_db, {"Authorization": f"Bearer {token}"})
    faults = {"armed": False, "asked": 0}
    unheld = RunLeases.unheld

    def faulty(self: RunLeases, run_ids: Any) -> list[str]:
        if faults["armed"]:
            faults["asked"] += 1
            raise StoreUnavailable("the store is unavailable: a test's fault")
        return unheld(self, run_ids)

    monkeypatch.setattr(RunLeases, "unheld", faulty)
    sweeper = create_app(postgres_db.url, [slowpoke()], sweep_seconds=0.1)
    with TestClient(sweeper) as client:
        other = create_app(postgres_db.url, [slowpoke()], grace_seconds=0.2, recover=False)
        with TestClient(other) as elsewhere:
            run_id = world.start_and_wait_for_the_tool(elsewhere)
            faults["armed"] = True  # from before the other process stops
        HOLD["seconds"] = 0.0
        stopped = faults["asked"]
        deadline = time.monotonic() + 10
        while faults["asked"] < stopped + 5:  # five sweeps fail after it stopped
            assert get_run(postgres_db, run_id).status == "running" and CALLS == ["10042"]
            assert time.monotonic() < deadline, "the sweep stopped after a fault"
            time.sleep(0.02)
        faults["armed"] = False
        world.wait_for(client, run_id, "succeeded")
    assert CALLS == ["10042", "10042"]
    resumed = [e.event for e in read_journal(postgres_db, run_id) if e.type == "run.resumed"]
    assert len(resumed) == 1


def test_a_server_started_without_recovery_takes_nothing_over(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-recover: neither at start nor in its sweeps does the server drive a run
    another process left."""
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    monkeypatch.setitem(HOLD, "seconds", 60.0)
    CALLS.clear()
    token = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
    world = World(postgres_db.url, postgres_db, {"Authorization": f"Bearer {token}"})
    with TestClient(create_app(postgres_db.url, [slowpoke()], grace_seconds=0.2)) as client:
        run_id = world.start_and_wait_for_the_tool(client)
    HOLD["seconds"] = 0.0
    passive = create_app(postgres_db.url, [slowpoke()], sweep_seconds=0.1, recover=False)
    with TestClient(passive):
        time.sleep(1.0)  # ten sweeps
    assert get_run(postgres_db, run_id).status == "running" and CALLS == ["10042"]


def test_a_server_whose_lease_session_died_stops_a_run_another_process_took_over(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica's lease session dies (the database ended it) while it drives a run, and
    another process takes the run's lease before this one can hold it again: the run has
    another driver, so this server stops driving it (as at a shutdown: `running`, nothing
    cancelled), and drives it again once nobody holds it. The tool ran once per driver;
    before, both would have driven the run until one ended."""
    import threading

    import psycopg

    from steward.store.leases import RunLeases

    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    monkeypatch.setitem(HOLD, "seconds", 60.0)
    CALLS.clear()
    token = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
    world = World(postgres_db.url, postgres_db, {"Authorization": f"Bearer {token}"})
    # the server's lease check waits until the other process holds the lease (else it
    # could find its dead session and take the lease again first, a race it may win)
    taken = threading.Event()
    verify = RunLeases.verify

    def after_the_take(self: RunLeases) -> frozenset[str]:
        return verify(self) if taken.is_set() else frozenset()

    monkeypatch.setattr(RunLeases, "verify", after_the_take)
    app = create_app(postgres_db.url, [slowpoke()], sweep_seconds=0.1, grace_seconds=0.2)
    dsn = postgres_db.writer.url.set(drivername="postgresql").render_as_string(False)
    with TestClient(app) as client, psycopg.connect(dsn, autocommit=True) as other:
        service = app.state.service
        run_id = world.start_and_wait_for_the_tool(client)
        task = service._tasks[run_id]
        pid = service.leases._connection.info.backend_pid
        other.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for its end
        took = other.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 7431))", (run_id,)
        ).fetchone()
        assert took == (True,)  # the session's leases went with it: another process has it
        taken.set()
        deadline = time.monotonic() + 10
        while not task.done():
            assert time.monotonic() < deadline, "the server kept driving a run it lost"
            time.sleep(0.02)
        assert get_run(postgres_db, run_id).status == "running"
        assert CALLS == ["10042"]
        time.sleep(0.5)  # five sweeps: the lease is held elsewhere, the run is left to it
        assert run_id not in service._tasks and CALLS == ["10042"]
        HOLD["seconds"] = 0.0
        other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 7431))", (run_id,))
        world.wait_for(client, run_id, "succeeded")
    assert CALLS == ["10042", "10042"]
    kinds = [e.type for e in read_journal(postgres_db, run_id)]
    assert "run.cancelled" not in kinds and kinds.count("run.finished") == 1


def test_cancelling_a_run_while_its_tool_runs(world: World) -> None:
    url, db, headers = world.url, world.db, world.headers
    with TestClient(create_app(url, [slowpoke()])) as client:
        run_id = world.start_and_wait_for_the_tool(client)
        started = time.monotonic()
        response = client.post(
            f"/v1/runs/{run_id}/cancel", json={"reason": "customer hung up"}, headers=headers
        )
        assert time.monotonic() - started < 5  # the 60 s tool did not have to finish
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["reason"] == "cancelled by admin:ops: customer hung up"
    failed = [e.event for e in read_journal(db, run_id) if e.type == "tool.failed"]
    assert [f.code for f in failed] == ["tool.cancelled"]  # type: ignore[union-attr]


def test_a_run_waiting_for_a_slot_is_on_record_queued_and_starts_when_one_frees(
    world: World,
) -> None:
    with TestClient(create_app(world.url, [slowpoke()], grace_seconds=0.2)) as client:
        first = world.start_and_wait_for_the_tool(client)  # holds the agent's only slot
        second = world.start(client, "and order 10043?")
        assert second.status_code == 202, second.text
        assert second.json()["status"] == "queued"
        assert second.json()["input"] == "and order 10043?"
        run_id = second.json()["id"]
        found = client.get(f"/v1/runs/{run_id}", headers=world.headers)
        assert found.status_code == 200 and found.json()["status"] == "queued", found.text
        HOLD["seconds"] = 0.0
        for each in (first, run_id):
            world.wait_for(client, each, "succeeded")
    types = [e.type for e in read_journal(world.db, run_id)]
    assert types[:2] == ["run.queued", "run.started"] and types[-1] == "run.finished"


def test_a_graceful_stop_loses_no_queued_run(world: World) -> None:
    with TestClient(create_app(world.url, [slowpoke()], grace_seconds=0.2)) as client:
        first = world.start_and_wait_for_the_tool(client)
        queued = [world.start(client, f"and order 1004{n}?").json()["id"] for n in range(3)]
    assert [get_run(world.db, r).status for r in queued] == ["queued"] * 3
    HOLD["seconds"] = 0.0
    with TestClient(create_app(world.url, [slowpoke()])) as client:
        for run_id in [first, *queued]:
            world.wait_for(client, run_id, "succeeded")


def test_cancelling_a_queued_run_finishes_it_before_it_starts(world: World) -> None:
    with TestClient(create_app(world.url, [slowpoke()], grace_seconds=0.2)) as client:
        world.start_and_wait_for_the_tool(client)
        run_id = world.start(client, "and order 10043?").json()["id"]
        response = client.post(
            f"/v1/runs/{run_id}/cancel", json={"reason": "duplicate"}, headers=world.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
    assert [e.type for e in read_journal(world.db, run_id)] == ["run.queued", "run.finished"]
    assert get_run(world.db, run_id).reason == "cancelled by admin:ops: duplicate"


CAREFUL = """
name: careful
model: scripted
tools: [refund]
decision_authority:
  requires_human_review: [refund]
"""
REFUNDS: list[str] = []


@tool(effect="write", keyed=True)
def refund(order: str, ctx: ToolContext) -> dict[str, Any]:
    """Refund an order (counted: each call is one side effect)."""
    REFUNDS.append(ctx.idempotency_key)
    return {"order": order, "refunded": True}


def careful() -> AgentRuntime:
    script = [calls(("refund", {"order": "10042"})), final("Refunded.", 0.9)]
    return build_agent(
        load_spec_text(CAREFUL, "careful.yaml"), [refund], model=ScriptedModel(script)
    )


def test_the_sweeper_resumes_a_run_whose_decision_nobody_acted_on(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision committed whose in-memory resume was lost (a crash right after the 200,
    or `approvals approve --no-resume`): the periodic sweep drives the run on."""
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    REFUNDS.clear()
    token = create_key(any_db, name="ops", role=Role.ADMIN, by="test")[1]
    world = World(any_db.url, any_db, {"Authorization": f"Bearer {token}"})
    with TestClient(create_app(any_db.url, [careful()], sweep_seconds=0.1)) as client:
        run_id = client.post(
            "/v1/runs", json={"agent": "careful", "input": "refund 10042"}, headers=world.headers
        ).json()["id"]
        world.wait_for(client, run_id, "waiting")
        [approval] = list_approvals(any_db, "pending")
        decide_approval(any_db, approval.id, approve=True, by="ana")  # and nobody resumes
        body = world.wait_for(client, run_id, "succeeded")
    assert body["output"] == "Refunded."
    assert len(REFUNDS) == 1
