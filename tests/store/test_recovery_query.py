"""Recovery reads the store: which runs can make progress (resumable_runs), and which one
of several processes that found the same run drives it (claim_run). On both stores."""

from __future__ import annotations

import asyncio
import time

from steward.core.events import (
    ApprovalRequested,
    RunFinished,
    RunQueued,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
)
from steward.store import Database, Journal
from steward.store.approvals import decide_approval
from steward.store.recovery import claim_run, resumable_runs
from steward.store.runs import get_run


def _waiting(journal: Journal, run_id: str, expires_in: float = 3600.0) -> str:
    approval_id = f"apr_{run_id}"
    journal.append(run_id, RunStarted("desk", "v1", "refund please"))
    journal.append(
        run_id,
        ApprovalRequested(approval_id, "desk", f"{run_id}:0:c1", "issue_refund", {}, "h",
                          time.time() + expires_in, "review"),
    )  # fmt: skip
    journal.append(run_id, RunWaiting("waiting for 1 approval(s)", (approval_id,)))
    return approval_id


def test_resumable_runs_are_those_that_can_make_progress(any_db: Database) -> None:
    journal = Journal(any_db)
    try:
        journal.append("r_queued", RunQueued("desk", "v1", "hi"))
        journal.append("r_running", RunStarted("desk", "v1", "hi"))
        _waiting(journal, "r_pending")
        decided = _waiting(journal, "r_decided")
        rejected = _waiting(journal, "r_rejected")
        _waiting(journal, "r_overdue", expires_in=-1.0)
        journal.append("r_done", RunStarted("desk", "v1", "hi"))
        journal.append("r_done", RunFinished(RunStatus.SUCCEEDED, "ok"))
        journal.flush_sync()
        decide_approval(any_db, decided, approve=True, by="ana")
        decide_approval(any_db, rejected, approve=False, by="ana", comment="no")

        assert get_run(any_db, "r_queued").status == "queued"
        everything = {run.id for run in resumable_runs(any_db)}
        assert everything == {"r_queued", "r_running", "r_decided", "r_rejected", "r_overdue"}
        unblocked = {run.id for run in resumable_runs(any_db, "unblocked")}
        assert unblocked == {"r_decided", "r_rejected", "r_overdue"}
    finally:
        journal.close()


def test_a_queued_run_keeps_its_creation_time_when_it_starts(any_db: Database) -> None:
    journal = Journal(any_db)
    try:
        journal.append("r1", RunQueued("desk", "v1", "hi", {"tenant": "acme"}), ts=100.0)
        journal.append("r1", RunStarted("desk", "v1", "hi", {"tenant": "acme"}), ts=105.0)
        asyncio.run(journal.flush())
    finally:
        journal.close()
    row = get_run(any_db, "r1")
    assert (row.status, row.created_at, row.updated_at) == ("running", 100.0, 105.0)
    assert row.tags == {"tenant": "acme"}


def test_of_two_claimants_one_drives_the_run(any_db: Database) -> None:
    journal = Journal(any_db)
    try:
        decided = _waiting(journal, "r1")
        journal.flush_sync()
    finally:
        journal.close()
    decide_approval(any_db, decided, approve=True, by="ana")
    seen = get_run(any_db, "r1")  # both found it waiting behind a decided request
    assert claim_run(any_db, seen, RunResumed("server", "desk")) is not None
    assert claim_run(any_db, seen, RunResumed("cli", "desk")) is None
    again = get_run(any_db, "r1")
    assert again.status == "running" and again.updated_at > seen.updated_at
    assert claim_run(any_db, again, RunResumed("later", "desk")) is not None  # fresh read
