"""Several `steward serve` replicas over one PostgreSQL database, as real processes: any
replica accepts runs and decisions, a stream on one follows a run another drives, a
replica starting never resumes a run another live replica drives, and a rate limit
holds across them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import read_journal
from steward.testing.served import (
    HOLD_ENV,
    ServedProcess,
    chain_verifies,
    crash_desk_spec,
    refunds_by_run,
)

LARGE_REFUND = "Order #10114 arrived without the tent. Please refund $330 for it."  # reviewed
SMALL_REFUND = "Please refund $20 on order #10114, the strap broke."  # autonomous


@dataclass
class Replicas:
    a: ServedProcess
    b: ServedProcess
    db: Database
    systems: Path
    hold: Path
    admin: str
    reviewer: str

    def start(self, on: ServedProcess, text: str) -> str:
        status, body = on.call(
            "POST", "/v1/runs", self.admin, {"agent": "support-desk", "input": text}
        )
        assert status == 202, body
        return str(body["id"])

    def status(self, on: ServedProcess, run_id: str) -> str:
        status, body = on.call("GET", f"/v1/runs/{run_id}", self.admin)
        assert status == 200, body
        return str(body["status"])

    def wait_for(self, on: ServedProcess, run_id: str, *states: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.status(on, run_id)) not in states:
            assert time.monotonic() < deadline, f"run {run_id} is {now}, not {states}"
            time.sleep(0.05)

    def pending_approval(self, on: ServedProcess, run_id: str) -> str:
        _, body = on.call("GET", "/v1/approvals", self.admin)
        [found] = [a["id"] for a in body if a["run_id"] == run_id and a["status"] == "pending"]
        return str(found)


def _spec(tmp_path: Path, refunds_per_hour: int | None = None) -> Path:
    spec = yaml.safe_load(crash_desk_spec(max_concurrent_runs=4))
    if refunds_per_hour is not None:
        spec["rate_limits"] = {"issue_refund": f"{refunds_per_hour}/hour"}
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def replicas(
    postgres_db: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Replicas]:
    spec = _spec(tmp_path, getattr(request, "param", None))
    systems, hold = tmp_path / "systems.db", tmp_path / "hold"
    a = ServedProcess(postgres_db.url, spec, systems, tmp_path / "a.log")
    b = ServedProcess(postgres_db.url, spec, systems, tmp_path / "b.log")
    admin = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
    reviewer = create_key(postgres_db, name="ana", role=Role.REVIEWER, by="test")[1]
    world = Replicas(a, b, postgres_db, systems, hold, admin, reviewer)
    try:
        a.start(**{HOLD_ENV: str(hold)})
        yield world
    finally:
        hold.unlink(missing_ok=True)
        a.kill()
        b.kill()
    assert chain_verifies(postgres_db)


def _follow(on: ServedProcess, token: str, run_id: str, seen: list[tuple[float, str]]) -> None:
    """Read the run's SSE stream on `on` until run.finished (20 s at most)."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{on.base}/v1/runs/{run_id}/stream"
    with httpx.stream("GET", url, headers=headers, timeout=20) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append((time.monotonic(), line.removeprefix("event: ")))
                if line == "event: run.finished":
                    return


@pytest.mark.slow
def test_a_stream_on_one_replica_follows_a_run_another_drives(replicas: Replicas) -> None:
    """Started on A, approved on B (which resumes it): A's stream shows the refund and
    the finish as they commit, not at its next keep-alive (15 s)."""
    replicas.b.start(**{HOLD_ENV: str(replicas.hold)})
    run_id = replicas.start(replicas.a, LARGE_REFUND)
    replicas.wait_for(replicas.a, run_id, "waiting")
    seen: list[tuple[float, str]] = []
    follower = threading.Thread(
        target=_follow, args=(replicas.a, replicas.admin, run_id, seen), daemon=True
    )
    follower.start()
    deadline = time.monotonic() + 10
    while not any(kind == "approval.requested" for _, kind in seen):
        assert time.monotonic() < deadline, seen
        time.sleep(0.02)
    approval = replicas.pending_approval(replicas.b, run_id)
    decided = time.monotonic()
    status, body = replicas.b.call(
        "POST", f"/v1/approvals/{approval}/decision", replicas.reviewer,
        {"decision": "approve", "comment": "ok"},
    )  # fmt: skip
    assert status == 200, body
    follower.join(timeout=20)
    kinds = [kind for _, kind in seen]
    assert kinds[-1] == "run.finished", kinds
    assert "run.resumed" in kinds and "tool.succeeded" in kinds
    assert seen[-1][0] - decided < 5.0, "the stream heard of B's events at once"
    assert refunds_by_run(replicas.systems)[run_id] == 1


@pytest.mark.slow
def test_a_replica_starting_leaves_a_run_another_replica_drives(replicas: Replicas) -> None:
    """A drives a run (its tool holds); B starts and recovers: the run is A's, and it
    finishes once, with one activation."""
    replicas.hold.touch()
    run_id = replicas.start(replicas.a, "hold the line")
    replicas.wait_for(replicas.a, run_id, "running")
    replicas.b.start(**{HOLD_ENV: str(replicas.hold)})  # recovers at start
    time.sleep(1.0)  # B's recovery has looked at every running run by now
    replicas.hold.unlink()
    replicas.wait_for(replicas.b, run_id, "succeeded")
    types = [entry.type for entry in read_journal(replicas.db, run_id)]
    assert "run.resumed" not in types, types
    assert types.count("tool.succeeded") == 1, types


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [3], indirect=True)
def test_a_rate_limit_holds_across_replicas(replicas: Replicas) -> None:
    """issue_refund: 3/hour, six small refunds asked of two replicas: three happen."""
    replicas.b.start(**{HOLD_ENV: str(replicas.hold)})
    runs = [replicas.start(replicas.a if n % 2 else replicas.b, SMALL_REFUND) for n in range(6)]
    for run_id in runs:
        replicas.wait_for(replicas.a, run_id, "succeeded", "escalated", "failed")
    refunds = refunds_by_run(replicas.systems)
    assert sum(refunds[run_id] for run_id in runs) == 3, refunds
    denied: list[Any] = [
        e
        for run_id in runs
        for e in read_journal(replicas.db, run_id)
        if e.type == "gate.decided" and "rate_limit" in repr(e.event)
    ]
    assert denied, "the fourth refund onwards was refused by the shared rate limit"
