"""A rate limit on a delegate tool counts the delegation once: a resumed parent that
re-enters the same `delegate.*` call (its child waited on a review) takes no second
slot, and the tree completes. The same holds for any keyed call that re-enters the gate
(an approved call re-checked on resume)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from delegation_tree import ROOT_SAYS, Refunds, agent, calls, final, refund_tool, spec, three_levels

from steward.core.events import RateSlotTaken, RunStatus
from steward.store import Database, Journal
from steward.store.approvals import decide_approval, list_approvals
from steward.store.runs import read_journal, run_tree


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()


def _slots(db: Database, run_id: str) -> list[Any]:
    return [e.event for e in read_journal(db, run_id) if isinstance(e.event, RateSlotTaken)]


async def test_a_resumed_parent_reentering_its_delegate_call_takes_no_second_slot(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    deployment = three_levels(
        any_db, journal, refunds, billing_review=True,
        root_extra="rate_limits:\n  delegate.orders: 1/hour\n",
    )  # fmt: skip
    runner = deployment.runner
    first = await runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_rl")
    assert first.status is RunStatus.WAITING
    (pending,) = list_approvals(any_db, status="pending")
    decide_approval(any_db, pending.id, approve=True, by="reviewer:rita", principal="p_rita")
    done = await runner.resume(deployment.agents["triage"], "run_rl", "approved")
    # the root re-entered delegate.orders under the same key: its one slot still holds
    assert (done.status, done.denials) == (RunStatus.SUCCEEDED, ())
    assert [(s.tool, s.used) for s in _slots(any_db, "run_rl")] == [("delegate.orders", 1)]
    assert [r.status for r in run_tree(any_db, "run_rl")] == ["succeeded"] * 3
    assert [order for order, _ in refunds.done] == ["10114"]


async def test_an_approved_call_rechecked_on_resume_takes_no_second_slot(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    solo = agent(
        spec("solo", ["refund"], review=["refund"], extra="rate_limits:\n  refund: 1/hour\n"),
        [calls(("refund", {"order": "7"})), final("refunded 7")],
        [refund_tool(refunds)],
    )
    deployment = three_levels(any_db, journal, refunds)
    deployment.agents["solo"] = solo
    runner = deployment.runner
    waiting = await runner.run(solo, "refund order 7", run_id="run_rs")
    (pending,) = list_approvals(any_db, status="pending")
    decide_approval(any_db, pending.id, approve=True, by="reviewer:rita", principal="p_rita")
    done = await runner.resume(solo, waiting.run_id, "approved")
    assert (done.status, done.denials) == (RunStatus.SUCCEEDED, ())
    assert [s.used for s in _slots(any_db, "run_rs")] == [1]
    assert refunds.done == [("7", refunds.done[0][1])]
