"""`steward serve --engine temporal`: a server that dies between putting a run on record
(queued) and starting its workflow leaves a run no worker will ever see. A live server's
sweep adopts it (no server restarts), and a worker runs it once. Real processes: two
servers, a worker, the Temporal dev server, one database."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import get_run, read_journal
from steward.testing.served import (
    DEMO_SPEC,
    ServedProcess,
    WorkerProcess,
    chain_verifies,
    refunds_by_run,
)

pytestmark = pytest.mark.slow
SMALL_REFUND = "Please refund $20 on order #10114, the strap broke."  # autonomous
SWEEP = 0.5  # the live server's sweep interval (seconds)
SETTLE = 60.0  # seconds a run may take to reach a state here (2 shared CPUs)


@dataclass
class Deployment:
    dying: ServedProcess  # dies at the crash point run.queued
    live: ServedProcess
    worker: WorkerProcess
    db: Database
    admin: str


@pytest.fixture
def deployment(temporal_address: str, tmp_path: Path) -> Iterator[Deployment]:
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    systems = tmp_path / "systems.db"
    db = Database.open(url, create=True)
    admin = create_key(db, name="ops", role=Role.ADMIN, by="test")[1]
    target = ("--temporal", temporal_address, "--task-queue", f"takeover-{uuid.uuid4().hex[:10]}")
    serve = ("--engine", "temporal", *target)
    dying = ServedProcess(url, DEMO_SPEC, systems, tmp_path / "dying.log", args=serve)
    live = ServedProcess(
        url, DEMO_SPEC, systems, tmp_path / "live.log",
        args=(*serve, "--sweep-seconds", str(SWEEP)),
    )  # fmt: skip
    worker = WorkerProcess(url, DEMO_SPEC, systems, tmp_path / "worker.log", args=target)
    try:
        live.start()
        worker.start()
        yield Deployment(dying, live, worker, db, admin)
    finally:
        dying.kill()
        live.kill()
        worker.stop()
    assert chain_verifies(db)
    db.close()


def test_a_queued_run_a_dead_server_left_without_a_workflow_is_adopted_by_a_live_one(
    deployment: Deployment,
) -> None:
    d = deployment
    d.dying.start(STEWARD_CRASH_AT="run.queued")
    with contextlib.suppress(OSError):  # it dies before it answers
        d.dying.call("POST", "/v1/runs", d.admin, {"agent": "support-desk", "input": SMALL_REFUND})
    d.dying.wait(timeout=30)
    status, listed = d.live.call("GET", "/v1/runs", d.admin)
    assert status == 200, listed
    [run_id] = [run["id"] for run in listed["items"]]
    killed = time.monotonic()
    deadline = killed + SETTLE
    while (now := get_run(d.db, run_id).status) != "succeeded":
        assert now in {"queued", "running"}, now
        assert time.monotonic() < deadline, f"run {run_id} is {now}: nobody adopted it"
        time.sleep(0.1)
    print(f"\nthe dead server's queued run finished {time.monotonic() - killed:.2f} s later")
    assert d.worker.alive()
    assert refunds_by_run(d.worker.systems) == {run_id: 1}
    types = [entry.type for entry in read_journal(d.db, run_id)]
    assert types.count("run.started") == 1 and types.count("run.finished") == 1, types
