"""SIGKILL a real `steward serve` where acknowledged work used to be lost, restart it, and
check every run finishes as its journal dictates: (a) right after a decision's 200,
(b) with runs queued for a slot, (c) between a write's intent and its result. Every
approved refund happens exactly once and the audit chain verifies. SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import get_run, read_journal
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
class Crash:
    server: ServedProcess
    db: Database
    hold: Path
    admin: str
    reviewer: str

    def start(self, text: str) -> dict[str, Any]:
        status, body = self.server.call(
            "POST", "/v1/runs", self.admin, {"agent": "support-desk", "input": text}
        )
        assert status == 202, body
        found: dict[str, Any] = body
        return found

    def status(self, run_id: str) -> str:
        status, body = self.server.call("GET", f"/v1/runs/{run_id}", self.admin)
        assert status == 200, body
        return str(body["status"])

    def wait_for(self, run_id: str, *states: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.status(run_id)) not in states:
            assert time.monotonic() < deadline, f"run {run_id} is {now}, not {states}"
            time.sleep(0.05)

    def pending_approval(self, run_id: str) -> str:
        _, body = self.server.call("GET", "/v1/approvals", self.admin)
        [found] = [a["id"] for a in body if a["run_id"] == run_id]
        return str(found)

    def approve(self, approval_id: str) -> tuple[int, Any]:
        return self.server.call(
            "POST", f"/v1/approvals/{approval_id}/decision", self.reviewer,
            {"decision": "approve", "comment": "ok"},
        )  # fmt: skip

    def hold_a_slot(self) -> str:
        """A run whose `hold` tool keeps the agent's only slot until the file goes."""
        self.hold.touch()
        run_id = str(self.start("hold the line")["id"])
        self.wait_for(run_id, "running")
        return run_id

    def restart(self) -> None:
        self.server.kill()
        self.hold.unlink(missing_ok=True)
        self.server.start()

    def tool_events(self, run_id: str, type_: str, tool: str) -> list[Any]:
        return [
            e.event
            for e in read_journal(self.db, run_id)
            if e.type == type_ and getattr(e.event, "tool", None) == tool
        ]


@pytest.fixture
def crash(any_db: Database, tmp_path: Path) -> Iterator[Crash]:
    spec = tmp_path / "desk.yaml"
    spec.write_text(crash_desk_spec(max_concurrent_runs=1))
    hold = tmp_path / "hold"
    server = ServedProcess(any_db.url, spec, tmp_path / "systems.db", tmp_path / "serve.log")
    admin = create_key(any_db, name="ops", role=Role.ADMIN, by="test")[1]
    reviewer = create_key(any_db, name="ana", role=Role.REVIEWER, by="test")[1]
    world = Crash(server, any_db, hold, admin, reviewer)
    server.start(**{HOLD_ENV: str(hold)})
    try:
        yield world
    finally:
        server.kill()
    assert chain_verifies(any_db)


@pytest.mark.slow
def test_sigkill_right_after_a_decision(crash: Crash) -> None:
    refund = crash.start(LARGE_REFUND)["id"]
    crash.wait_for(refund, "waiting")
    approval = crash.pending_approval(refund)
    holder = crash.hold_a_slot()  # the resume must wait for the slot: it cannot win the race
    assert crash.approve(approval)[0] == 200
    crash.server.kill()
    assert get_run(crash.db, refund).status == "waiting"  # decided, not resumed

    crash.restart()
    crash.wait_for(refund, "succeeded")
    crash.wait_for(holder, "succeeded")
    assert refunds_by_run(crash.server.systems)[refund] == 1
    assert len(crash.tool_events(refund, "tool.succeeded", "issue_refund")) == 1


@pytest.mark.slow
def test_sigkill_with_runs_queued_for_a_slot(crash: Crash) -> None:
    holder = crash.hold_a_slot()
    queued = [crash.start(SMALL_REFUND) for _ in range(3)]
    assert [q["status"] for q in queued] == ["queued"] * 3
    crash.server.kill()

    crash.restart()
    for run_id in [holder, *(q["id"] for q in queued)]:
        crash.wait_for(run_id, "succeeded")
    refunds = refunds_by_run(crash.server.systems)
    assert [refunds[q["id"]] for q in queued] == [1, 1, 1]


@pytest.mark.slow
def test_sigkill_between_a_writes_intent_and_its_result(crash: Crash) -> None:
    crash.server.kill()  # again, now set to die after the second tool call returns
    crash.server.start(STEWARD_CRASH_AT="tool.after:2")
    refund = crash.start(LARGE_REFUND)["id"]
    crash.wait_for(refund, "waiting")  # lookup_order returned: crash point 1
    with contextlib.suppress(OSError):  # the process may die before it answers
        crash.approve(crash.pending_approval(refund))  # the refund's return: crash point 2
    assert crash.server.wait(timeout=30) == -9
    assert refunds_by_run(crash.server.systems)[refund] == 1  # the effect happened
    assert crash.tool_events(refund, "tool.succeeded", "issue_refund") == []  # unrecorded

    crash.restart()
    crash.wait_for(refund, "succeeded")
    assert refunds_by_run(crash.server.systems)[refund] == 1  # and did not happen again
    [done] = crash.tool_events(refund, "tool.succeeded", "issue_refund")
    assert done.result["duplicate"] is True  # the keyed retry found the first refund
