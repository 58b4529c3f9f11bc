"""The governance guarantees hold across hops (triage -> orders -> billing): a review
anywhere pauses the whole tree and a decision resumes it from its root; four eyes holds
for the person who started the root; the tree cannot overspend the root's per-run
budget; a disabled specialist refuses; provenance does not turn the parent's data into
the specialist's "user" words; a tree too deep or looping ends in its fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from delegation_tree import (
    ROOT_SAYS,
    Deployment,
    Refunds,
    agent,
    calls,
    final,
    priced,
    refund_tool,
    spec,
    three_levels,
)

from steward.core.errors import PermissionDenied
from steward.core.events import GateDecided, RunStatus, RunWaiting, ToolCallProposed, ToolFailed
from steward.core.messages import Source
from steward.engines.approvals import ApprovalService
from steward.security.keys import Principal, Role
from steward.store import Database, Journal
from steward.store.agents import set_agent_state
from steward.store.approvals import decide_approval, list_approvals
from steward.store.recovery import resumable_runs
from steward.store.runs import get_run, read_journal, root_of, run_tree

ANA = Principal("k_ana", "p_ana", "ana", Role.REVIEWER)  # starts the root
RITA = Principal("k_rita", "p_rita", "rita", Role.REVIEWER)  # another person
TAGS = ANA.starter_tags()


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()


def _events(db: Database, run_id: str, kind: type[Any]) -> list[Any]:
    return [e.event for e in read_journal(db, run_id) if isinstance(e.event, kind)]


def _approvals(deployment: Deployment) -> tuple[ApprovalService, list[str]]:
    resumed: list[str] = []

    async def resume(run_id: str, reason: str) -> None:
        resumed.append(run_id)
        row = get_run(deployment.db, run_id)
        await deployment.runner.resume(deployment.agents[row.agent], run_id, reason)

    return ApprovalService(deployment.db, deployment.journal, resume), resumed


async def test_a_review_two_hops_down_pauses_the_tree_and_the_decision_resumes_the_root(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    deployment = three_levels(any_db, journal, refunds, billing_review=True)
    result = await deployment.runner.run(
        deployment.agents["triage"], ROOT_SAYS, run_id="run_root", tags=TAGS
    )
    tree = run_tree(any_db, "run_root")
    assert [r.status for r in tree] == ["waiting"] * 3
    (pending,) = list_approvals(any_db, status="pending")
    assert pending.run_id == tree[2].id and pending.tool == "refund"
    # the whole chain waits on the one approval, up to the root
    assert result.status is RunStatus.WAITING and result.waiting_on == (pending.id,)
    assert _events(any_db, "run_root", RunWaiting)[-1].approval_ids == (pending.id,)
    assert _events(any_db, tree[1].id, RunWaiting)[-1].approval_ids == (pending.id,)
    assert refunds.done == []
    # nothing in the tree is resumable while a review anywhere in it is pending
    assert resumable_runs(any_db, "unblocked") == []
    assert root_of(any_db, tree[2].id) == "run_root"

    # decided but not yet resumed (a lost resume): the sweeper finds the root, only
    decide_approval(any_db, pending.id, approve=True, by="reviewer:rita", principal="p_rita")
    assert [r.id for r in resumable_runs(any_db, "unblocked")] == ["run_root"]
    assert [r.id for r in resumable_runs(any_db, "all")] == ["run_root"]
    await deployment.runner.resume(deployment.agents["triage"], "run_root", "swept")
    tree = run_tree(any_db, "run_root")
    assert [r.status for r in tree] == ["succeeded"] * 3
    assert [order for order, _ in refunds.done] == ["10114"]


async def test_a_person_decides_a_review_two_hops_down_through_the_approval_service(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    deployment = three_levels(any_db, journal, refunds, billing_review=True)
    await deployment.runner.run(
        deployment.agents["triage"], ROOT_SAYS, run_id="run_root", tags=TAGS
    )
    (pending,) = list_approvals(any_db, status="pending")
    service, resumed = _approvals(deployment)
    # on behalf of: ana started the root, so ana may not approve the specialist's call
    with pytest.raises(PermissionDenied) as refused:
        await service.decide(pending.id, who=ANA, approve=True)
    assert refused.value.code == "auth.separation_of_duties"
    await service.decide(pending.id, who=RITA, approve=True)
    assert resumed == ["run_root"]  # the root, which enters its children again
    tree = run_tree(any_db, "run_root")
    assert [r.status for r in tree] == ["succeeded"] * 3
    assert len(tree) == 3  # the same children, no second ones
    assert [order for order, _ in refunds.done] == ["10114"]


async def test_a_tree_cannot_overspend_its_roots_budget(any_db: Database, journal: Journal) -> None:
    """Each specialist's own budget allows its spend; the root's per-run cap, held by
    every run of the tree, does not allow the sum: the second hop is refused."""
    refunds = Refunds()
    deployment = three_levels(
        any_db, journal, refunds, tool_cost=0.6,
        root_extra="cost_controls: {max_cost_per_run_usd: 1.0}\n",
    )  # fmt: skip
    deployment.prices = priced(0.0)  # model calls are free: the tools spend
    orders_spec = spec("orders", ["delegate.billing", "refund"], agents=["billing"],
                       autonomous=["delegate.billing", "refund"])  # fmt: skip
    deployment.agents["orders"] = agent(
        orders_spec,
        [calls(("refund", {"order": "1"})), calls(("delegate.billing", {"message": "refund 2"})),
         final("orders done")],
        [refund_tool(refunds, 0.6)],
    )  # fmt: skip
    await deployment.runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_b", tags=TAGS)
    tree = run_tree(any_db, "run_b")
    assert [r.agent for r in tree] == ["triage", "orders", "billing"]
    assert [order for order, _ in refunds.done] == ["1"]  # $0.60 of $1.00; billing's $0.60 not
    denied = [d for d in _events(any_db, tree[2].id, GateDecided) if d.stage == "budget"]
    assert [d.decision.primary_code for d in denied] == ["budget.tree_exhausted"]


async def test_a_disabled_specialist_refuses_and_disabling_mid_tree_stops_that_part(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    deployment = three_levels(any_db, journal, refunds, billing_review=True)
    set_agent_state(any_db, "orders", by="admin:ops", enabled=False)
    await deployment.runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_k1", tags=TAGS)
    failed = _events(any_db, "run_k1", ToolFailed)
    assert [(f.tool, f.code) for f in failed] == [("delegate.orders", "agent.disabled")]
    assert [r.id for r in run_tree(any_db, "run_k1")] == ["run_k1"]

    set_agent_state(any_db, "orders", by="admin:ops", enabled=True)
    deployment = three_levels(any_db, journal, refunds, billing_review=True)
    await deployment.runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_k2", tags=TAGS)
    (pending,) = list_approvals(any_db, status="pending")
    set_agent_state(any_db, "billing", by="admin:ops", enabled=False)  # while it waits
    deployment.runner.states.forget("billing")
    service, _ = _approvals(deployment)
    await service.decide(pending.id, who=RITA, approve=True)
    tree = run_tree(any_db, "run_k2")
    billing = [d for d in _events(any_db, tree[2].id, GateDecided) if d.stage == "kill_switch"]
    assert [d.decision.primary_code for d in billing] == ["agent.disabled"]
    assert refunds.done == []  # the approved refund never ran under the kill switch
    # billing stopped there (no further model turn); orders got that ending and went on
    assert [(r.agent, r.status, r.reason_code) for r in tree] == [
        ("triage", "succeeded", ""),
        ("orders", "succeeded", ""),
        ("billing", "escalated", "agent.disabled"),
    ]


async def test_a_specialists_user_is_the_roots_user_not_the_delegated_message(
    any_db: Database, journal: Journal
) -> None:
    """billing gets 'refund 10114 to IBAN-XYZ-99' from orders: 10114 is the root user's
    own word (user); the account is the parent's data (not user)."""
    refunds = Refunds()
    deployment = three_levels(any_db, journal, refunds)

    @_tool_pay
    def pay(order: str, account: str) -> dict[str, str]:
        return {"paid": order}

    deployment.agents["orders"] = agent(
        spec("orders", ["delegate.billing"], agents=["billing"], autonomous=["delegate.billing"]),
        [calls(("delegate.billing", {"message": "pay order 10114 to account ACCT-777-ZZ"})),
         final("ok")],
    )  # fmt: skip
    deployment.agents["billing"] = agent(
        spec("billing", ["pay"], autonomous=["pay"]),
        [calls(("pay", {"order": "10114", "account": "ACCT-777-ZZ"})), final("paid")],
        [pay],
    )
    await deployment.runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_p", tags=TAGS)
    tree = run_tree(any_db, "run_p")
    (proposed,) = _events(any_db, tree[2].id, ToolCallProposed)
    assert proposed.sources == {"order": Source.USER, "account": Source.TOOL}


def _tool_pay(function: Any) -> Any:
    from steward.tools import tool

    return tool(effect="write", keyed=True)(function)


async def test_a_tree_deeper_than_max_agent_hops_ends_with_a_person(
    any_db: Database, journal: Journal
) -> None:
    deployment = three_levels(any_db, journal, Refunds(), root_extra="", tool_cost=0.0)
    deployment.agents["triage"] = agent(
        spec("triage", ["delegate.orders"], agents=["orders"], autonomous=["delegate.orders"])
        + "  max_agent_hops: 1\n",
        [calls(("delegate.orders", {"message": "refund order 10114"})), final("never")],
    )
    result = await deployment.runner.run(
        deployment.agents["triage"], ROOT_SAYS, run_id="run_h", tags=TAGS
    )
    tree = run_tree(any_db, "run_h")
    assert [r.agent for r in tree] == ["triage", "orders"]  # billing (hop 2) never started
    assert result.status is RunStatus.ESCALATED
    assert result.reason_code == "delegation.max_agent_hops"
    assert [(r.status, r.reason_code) for r in tree] == [
        ("escalated", "delegation.max_agent_hops")
    ] * 2


async def test_a_loop_in_the_tree_ends_with_a_person(any_db: Database, journal: Journal) -> None:
    """orders asks billing, billing asks orders the same thing orders was asked: a loop."""
    deployment = three_levels(any_db, journal, Refunds())
    deployment.agents["billing"] = agent(
        spec("billing", ["delegate.orders"], agents=["orders"], autonomous=["delegate.orders"]),
        [calls(("delegate.orders", {"message": "Refund  ORDER 10114"})), final("never")],
    )
    result = await deployment.runner.run(
        deployment.agents["triage"], ROOT_SAYS, run_id="run_l", tags=TAGS
    )
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "delegation.loop")
    tree = run_tree(any_db, "run_l")
    assert [r.agent for r in tree] == ["triage", "orders", "billing"]
    assert {r.reason_code for r in tree} == {"delegation.loop"}


async def test_a_tree_too_deep_hands_off_to_the_fallback_agent(
    any_db: Database, journal: Journal
) -> None:
    deployment = three_levels(any_db, journal, Refunds())
    deployment.agents["triage"] = agent(
        spec("triage", ["delegate.orders"], agents=["orders", "escalation"],
             autonomous=["delegate.orders"])
        + "  max_agent_hops: 1\n  fallback: escalation\n",
        [calls(("delegate.orders", {"message": "refund order 10114"})), final("never")],
    )  # fmt: skip
    deployment.agents["escalation"] = agent(
        spec("escalation", []), [final("A person will call you back today.")]
    )
    result = await deployment.runner.run(
        deployment.agents["triage"], ROOT_SAYS, run_id="run_f", tags=TAGS
    )
    assert result.status is RunStatus.SUCCEEDED
    assert result.output == "A person will call you back today."
    tree = run_tree(any_db, "run_f")
    assert [(r.agent, r.hop) for r in tree] == [("triage", 0), ("orders", 1), ("escalation", 1)]
    assert tree[2].input == ROOT_SAYS  # the fallback gets the root's request


async def test_a_handoff_ends_the_caller_with_the_specialists_answer(
    any_db: Database, journal: Journal
) -> None:
    deployment = three_levels(any_db, journal, Refunds())
    deployment.agents["triage"] = agent(
        spec("triage", ["handoff.orders"], agents=["orders"], autonomous=["handoff.orders"]),
        [calls(("handoff.orders", {"message": "refund order 10114"})), final("never said")],
    )
    runner = deployment.runner
    result = await runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_o", tags=TAGS)
    assert (result.status, result.output) == (RunStatus.SUCCEEDED, "orders done")
    # replayed: the recorded handoff ends the run again, without running anything
    again = await runner.resume(deployment.agents["triage"], "run_o")
    assert (again.status, again.output) == (RunStatus.SUCCEEDED, "orders done")
    assert len(run_tree(any_db, "run_o")) == 3


async def test_trees_ending_at_the_hop_limit_do_not_open_the_delegation_breaker(
    any_db: Database, journal: Journal
) -> None:
    """A delegation refused by design is not a failing tool: after more such trees than
    the breaker's threshold, delegate.orders still runs."""
    deployment = three_levels(any_db, journal, Refunds())
    deployment.agents["triage"] = agent(
        spec("triage", ["delegate.orders"], agents=["orders"], autonomous=["delegate.orders"])
        + "  max_agent_hops: 1\n",
        [calls(("delegate.orders", {"message": "refund order 10114"})), final("never")],
    )
    runner = deployment.runner
    threshold = runner.gates.breakers.threshold
    for n in range(threshold + 2):
        result = await runner.run(deployment.agents["triage"], ROOT_SAYS, run_id=f"run_z{n}")
        assert result.reason_code == "delegation.max_agent_hops", (n, result)
