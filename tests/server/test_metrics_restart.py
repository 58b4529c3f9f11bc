"""/metrics of a real `steward serve` before and after a restart: the in-flight gauges
are read from the store, so a restart changes none of them (they used to start at 0:
`agent_approvals_pending` read 1 with 23 approvals pending); cost is a counter that
restarts at 0 with the process; the build is named. SQLite and PostgreSQL."""

from __future__ import annotations

import platform
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import steward
from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.testing.served import ServedProcess, crash_desk_spec

from .served import Served

LARGE_REFUND = "Order #10114 arrived without the tent. Please refund $330 for it."  # reviewed
SMALL_REFUND = "Please refund $20 on order #10114, the strap broke."  # autonomous
AGENT = {"agent_name": "support-desk"}
STATE = ("agent_approvals_pending", "agent_waiting_runs", "agent_active_runs", "agent_queued_runs")


@dataclass
class World:
    server: ServedProcess
    admin: str
    reviewer: str
    viewer: str

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        request = urllib.request.Request(
            f"{self.server.base}/metrics", headers={"Authorization": f"Bearer {self.viewer}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def status(self, run_id: str) -> str:
        return str(self.server.call("GET", f"/v1/runs/{run_id}", self.admin)[1]["status"])

    def run(self, text: str, *states: str) -> str:
        status, body = self.server.call(
            "POST", "/v1/runs", self.admin, {"agent": "support-desk", "input": text}
        )
        assert status == 202, body
        run_id = str(body["id"])
        deadline = time.monotonic() + 30
        while (now := self.status(run_id)) not in states:
            assert time.monotonic() < deadline, f"run {run_id} is {now}, not {states}"
            time.sleep(0.05)
        return run_id


def sample(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float | None:  # fmt: skip
    return scraped.get((name, frozenset(labels.items())))


@pytest.fixture
def world(any_db: Database, tmp_path: Path) -> Iterator[World]:
    spec = tmp_path / "desk.yaml"
    spec.write_text(crash_desk_spec(max_concurrent_runs=4))
    server = ServedProcess(any_db.url, spec, tmp_path / "systems.db", tmp_path / "serve.log")
    keys = [create_key(any_db, name=r.value, role=r, by="test")[1]
            for r in (Role.ADMIN, Role.REVIEWER, Role.VIEWER)]  # fmt: skip
    server.start(STEWARD_TELEMETRY="on")  # the event-folded metrics too, not only the state
    try:
        yield World(server, *keys)
    finally:
        server.kill()


@pytest.mark.slow
def test_a_restart_changes_no_state_gauge(world: World) -> None:
    idle = world.scrape()
    for name in STATE:  # a loaded agent has a series at 0, not a gap
        assert sample(idle, name, **AGENT) == 0, name
    waiting = [world.run(LARGE_REFUND, "waiting") for _ in range(3)]
    world.run(SMALL_REFUND, "succeeded")

    before = world.scrape()
    assert sample(before, "agent_approvals_pending", **AGENT) == 3
    assert sample(before, "agent_waiting_runs", **AGENT) == 3
    assert sample(before, "agent_active_runs", **AGENT) == 0
    spent = sample(before, "agent_cost_usd_total", agent_name="support-desk", model="rules")
    assert spent is not None and spent >= 0  # the demo's rules model costs nothing
    assert sample(before, "agent_tasks_total", agent_name="support-desk", status="waiting") == 3

    world.server.kill()  # no shutdown hook gets a chance to write anything down
    world.server.start(STEWARD_TELEMETRY="on")
    after = world.scrape()
    for name in STATE:
        assert sample(after, name, **AGENT) == sample(before, name, **AGENT), name
    assert sample(after, "steward_store_up") == 1
    build = {"version": steward.__version__, "python": platform.python_version()}
    assert sample(before, "steward_build_info", **build) == 1
    assert sample(after, "steward_build_info", **build) == 1
    # a counter starts again at 0 with its process (Prometheus reads that as a reset); it
    # is not seeded from the ledger, which would show the restart as spend
    assert sample(after, "agent_cost_usd_total", agent_name="support-desk", model="rules") is None
    assert sample(after, "agent_tasks_total", agent_name="support-desk", status="waiting") is None

    # decisions made after the restart move the gauges: nothing drifts
    status, pending = world.server.call("GET", "/v1/approvals", world.admin)
    assert status == 200 and len(pending) == 3
    decided = world.server.call(
        "POST", f"/v1/approvals/{pending[0]['id']}/decision", world.reviewer,
        {"decision": "reject", "comment": "no"},
    )  # fmt: skip
    assert decided[0] == 200, decided
    deadline = time.monotonic() + 30
    while sample(now := world.scrape(), "agent_waiting_runs", **AGENT) != 2:
        assert time.monotonic() < deadline, now
        time.sleep(0.05)
    assert sample(now, "agent_approvals_pending", **AGENT) == 2
    assert pending[0]["run_id"] in waiting


def test_state_gauges_and_build_info_even_with_telemetry_off(served: Served) -> None:
    """`served` runs with STEWARD_TELEMETRY=off (a follower process folds the events):
    the state still comes from the store, and the scrape needs a key."""
    assert served.client.get("/metrics").status_code == 401
    run = served.start()
    served.wait_for(run["id"], "waiting")
    response = served.as_("viewer", "GET", "/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'agent_approvals_pending{agent_name="support-desk"} 1.0' in text
    assert 'agent_waiting_runs{agent_name="support-desk"} 1.0' in text
    assert 'agent_active_runs{agent_name="support-desk"} 0.0' in text
    assert (
        f'steward_build_info{{python="{platform.python_version()}",version="{steward.__version__}"}} 1.0'
        in text
    )
    assert "agent_tasks_total{" not in text  # nothing folded in this process
