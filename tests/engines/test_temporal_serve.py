"""`steward serve --engine temporal` over HTTP, as an operator runs it: a real server
process, a real `steward worker` process and the Temporal dev server, one database.
A run started through the API waits for a person, another principal approves it through
the API, a worker finishes it; the run's SSE stream on the server (which drives nothing
itself) follows what the worker records; a waiting run is cancelled through the API; a
run accepted while no worker is up is acknowledged, and runs once a worker starts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.served import LARGE_REFUND, issue_keys, steward_serve
from steward.server.api.stream import KEEPALIVE_SECONDS
from steward.store import Database
from steward.store.runs import get_run
from steward.testing.served import DEMO_SPEC, WorkerProcess, chain_verifies, refunds_by_run

pytestmark = pytest.mark.slow
SETTLE = 60.0  # seconds a run may take to reach a state here (2 shared CPUs)


@dataclass
class Api:
    base: str
    tokens: dict[str, str]
    db: Database
    systems: Path
    worker: WorkerProcess

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def start(self, text: str) -> str:
        response = self.call(
            "admin", "POST", "/v1/runs", json={"agent": "support-desk", "input": text}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def wait_for(self, run_id: str, *states: str) -> dict[str, Any]:
        deadline = time.monotonic() + SETTLE
        while True:
            body: dict[str, Any] = self.call("viewer", "GET", f"/v1/runs/{run_id}").json()
            if body.get("status") in states:
                return body
            assert time.monotonic() < deadline, f"run {run_id}: {body}, not {states}"
            time.sleep(0.1)

    def pending(self, run_id: str) -> str:
        body = self.call("viewer", "GET", "/v1/approvals").json()
        [found] = [a["id"] for a in body if a["run_id"] == run_id and a["status"] == "pending"]
        return str(found)


@pytest.fixture
def no_worker(temporal_address: str, tmp_path: Path) -> Iterator[Api]:
    """The server and the dev server; the worker is not started."""
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    systems = tmp_path / "systems.db"
    db = Database.open(url, create=True)
    tokens = issue_keys(db)
    queue = f"serve-{uuid.uuid4().hex[:10]}"
    target = ("--temporal", temporal_address, "--task-queue", queue)
    worker = WorkerProcess(url, DEMO_SPEC, systems, tmp_path / "worker.log", args=target)
    args = ("--demo", "--engine", "temporal", *target)
    try:
        with steward_serve(url, *args, env={"STEWARD_DEMO_SYSTEMS": str(systems)}) as base:
            yield Api(base, tokens, db, systems, worker)
        assert worker.pid is None or worker.alive(), worker.log.read_text()
    finally:
        worker.stop()
    assert chain_verifies(db)
    db.close()


@pytest.fixture
def api(no_worker: Api) -> Api:
    no_worker.worker.start()
    return no_worker


def _follow(api: Api, run_id: str, seen: list[str]) -> None:
    """Read the run's SSE stream until run.finished."""
    headers = {"Authorization": f"Bearer {api.tokens['viewer']}"}
    url = f"{api.base}/v1/runs/{run_id}/stream"
    with httpx.stream("GET", url, headers=headers, timeout=SETTLE) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
                if line == "event: run.finished":
                    return


def test_a_run_served_on_temporal_waits_is_approved_over_http_and_a_worker_finishes_it(
    api: Api,
) -> None:
    run_id = api.start(LARGE_REFUND)
    assert get_run(api.db, run_id).agent == "support-desk"  # on record when 202 answers
    waiting = api.wait_for(run_id, "waiting", "succeeded", "failed", "escalated")
    assert waiting["status"] == "waiting", waiting
    seen: list[str] = []
    follower = threading.Thread(target=_follow, args=(api, run_id, seen), daemon=True)
    follower.start()
    approval = api.pending(run_id)
    # the principal who started the run is not the one who decides it
    own = api.call("admin", "POST", f"/v1/approvals/{approval}/decision",
                   json={"decision": "approve"})  # fmt: skip
    assert own.status_code == 403, own.text
    assert own.json()["error"]["code"] == "auth.separation_of_duties"
    decided = api.call(
        "reviewer", "POST", f"/v1/approvals/{approval}/decision",
        json={"decision": "approve", "comment": "tent confirmed missing"},
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    done = api.wait_for(run_id, "succeeded", "failed", "escalated", "cancelled")
    assert done["status"] == "succeeded", done
    # the server reads the rows a worker commits (store/watch.py), not at its next
    # keep-alive (15 s): the stream ends soon after the run does
    follower.join(KEEPALIVE_SECONDS / 2)
    assert not follower.is_alive(), seen
    assert "tool.succeeded" in seen and seen[-1] == "run.finished", seen
    assert refunds_by_run(api.systems) == {run_id: 1}
    events = api.call("viewer", "GET", f"/v1/runs/{run_id}/events").json()
    types = [e["type"] for e in events]
    assert types.count("run.finished") == 1
    assert "approval.decided" in types, types


def test_a_waiting_run_served_on_temporal_is_cancelled_over_http(api: Api) -> None:
    run_id = api.start(LARGE_REFUND)
    assert api.wait_for(run_id, "waiting", "succeeded", "failed")["status"] == "waiting"
    approval = api.pending(run_id)
    seen: list[str] = []
    follower = threading.Thread(target=_follow, args=(api, run_id, seen), daemon=True)
    follower.start()
    cancelled = api.call(
        "admin", "POST", f"/v1/runs/{run_id}/cancel", json={"reason": "the customer withdrew"}
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled", body  # answered once the worker recorded it
    assert "the customer withdrew" in body["reason"]
    follower.join(SETTLE)
    assert not follower.is_alive() and seen[-1] == "run.finished", seen
    again = api.call("admin", "POST", f"/v1/runs/{run_id}/cancel", json={"reason": "twice"})
    assert again.status_code == 409, again.text
    request = api.call("viewer", "GET", f"/v1/approvals/{approval}").json()
    assert request["status"] == "cancelled", request
    assert refunds_by_run(api.systems) == {}


def test_a_run_accepted_while_no_worker_runs_is_acknowledged_and_runs_once_one_starts(
    no_worker: Api,
) -> None:
    """The workflow holds the run durably before any worker records it: the server
    answers 202 (never 404 for a run it accepted, which a client would start again), and
    the run is on record and runs once a worker comes up."""
    api = no_worker
    started = api.call(
        "admin", "POST", "/v1/runs",
        json={"agent": "support-desk", "input": "Where is my order #10014?"},
    )  # fmt: skip
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["agent"], body["status"]) == ("support-desk", "queued"), body
    run_id = body["id"]
    api.worker.start()
    done = api.wait_for(run_id, "succeeded", "failed", "escalated")
    assert done["status"] == "succeeded", done
    listed = api.call("viewer", "GET", "/v1/runs").json()["items"]
    assert [r["id"] for r in listed] == [run_id]  # one run, not two
