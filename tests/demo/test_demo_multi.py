"""The multi-agent demo (`steward demo --multi-agent`): triage hands each ticket to a
specialist through a governed `handoff.<agent>` call, a specialist hands what it cannot
resolve on to `escalation`, and the tickets end exactly as the single support desk ends
them: the same outcome table, the same denials, the same side effects, each category at
the desk that handles it, and a row per agent."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from steward.core.events import RunStatus
from steward.demo.job import MULTI_AGENT, DemoReport, run_demo
from steward.demo.systems import SupportSystems
from steward.store import Database
from steward.store.runs import get_run, run_tree

# where each ticket category must end up (injected tickets follow what they ask for)
DESK = {
    "order_status": "orders", "pii_laden": "orders", "kb_question": "orders",
    "small_refund": "refunds", "large_refund": "refunds", "huge_refund": "refunds",
    "password_reset": "account", "data_deletion": "account", "payment_details": "account",
    "out_of_scope": "escalation",
}  # fmt: skip


def _demo(base: Path, multi_agent: bool) -> tuple[DemoReport, Database, Path]:
    db = Database.open(f"sqlite:///{base / 'steward.db'}")
    systems = base / "systems.db"
    report = asyncio.run(run_demo(db, systems=systems, concurrency=8, multi_agent=multi_agent))
    return report, db, systems


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, Database, Path]:
    return _demo(tmp_path_factory.mktemp("single"), multi_agent=False)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, Database, Path]:
    return _demo(tmp_path_factory.mktemp("multi"), multi_agent=True)


def test_the_outcome_table_is_the_single_desks(
    single: tuple[DemoReport, Database, Path], multi: tuple[DemoReport, Database, Path]
) -> None:
    one, many = single[0], multi[0]
    assert len(many.results) == len(one.results) == 200
    assert many.buckets() == one.buckets()
    assert many.denials() == one.denials()
    assert many.escalations() == one.escalations()
    assert many.audit is not None and many.audit.ok
    # ticket by ticket, too (rate limits aside: which 20 resets win the race may differ)
    by_ticket = {t.id: one.bucket(r) for t, r in one.results}
    differ = [
        (t.id, t.category) for t, r in many.results
        if many.bucket(r) != by_ticket[t.id] and t.category != "password_reset"
    ]  # fmt: skip
    assert differ == []


def test_each_category_reaches_its_desk(multi: tuple[DemoReport, Database, Path]) -> None:
    report, db, _ = multi
    for ticket, result in report.results:
        route = report.routes[ticket.id]
        assert len(route) == 1, (ticket.id, route)
        if ticket.category == "injected":
            assert route[0] in {"account", "refunds"}, (ticket.id, route)
        else:
            assert route == (DESK[ticket.category],), (ticket.id, ticket.category, route)
        root = get_run(db, result.run_id)
        assert root.agent == "triage" and root.hop == 0 and root.parent_run_id is None
        child = run_tree(db, result.run_id)[1]
        assert (child.parent_run_id, child.root_run_id, child.hop) == (root.id, root.id, 1)
        # the ticket's run ends as its desk's run ends (a handoff)
        assert root.status == child.status, (ticket.id, root.status, child.status)
    injected = Counter(
        report.routes[t.id][0] for t, _ in report.results if t.category == "injected"
    )
    assert injected == {"account": 8, "refunds": 4}


def test_a_row_per_agent(multi: tuple[DemoReport, Database, Path]) -> None:
    agents = multi[0].agents
    assert set(agents) == set(MULTI_AGENT)
    assert agents["triage"].runs == 200
    # one desk per ticket at hop 1 (200 runs), and 29 tickets the account desk could not
    # resolve went on to escalation at hop 2: 15 deletion requests, 10 password resets
    # over the rate limit, 4 injected deletion requests (the single desk escalates the
    # same 29 with low confidence; here escalation is the desk that ends them so)
    assert sum(agents[n].runs for n in MULTI_AGENT[1:]) == 200 + 29
    assert not agents["triage"].denials, "triage's handoffs are all within its authority"
    assert agents["refunds"].runs == 64 and agents["refunds"].outcomes["waiting for approval"] == 25
    assert agents["refunds"].denials == {"condition.refund-over-500": 14}
    assert agents["account"].denials == {
        "tool.forbidden": 19, "rate_limit.exceeded": 10, "data_access.financial": 8,
        "tool.unlisted": 4,
    }  # fmt: skip
    assert agents["account"].outcomes == {
        "resolved autonomously": 20, "denied, answered": 12, "escalated": 29,
    }  # fmt: skip
    assert agents["escalation"].outcomes == {"escalated": 8 + 29}  # from triage, from account
    assert agents["orders"].outcomes == {"resolved autonomously": 67}


def test_what_a_desk_cannot_resolve_goes_on_to_escalation(
    single: tuple[DemoReport, Database, Path], multi: tuple[DemoReport, Database, Path]
) -> None:
    """Every escalated ticket ends at the escalation desk: straight from triage (no desk
    takes it) or after the desk that could not resolve it, by `handoff.escalation`; the
    whole tree ends escalated, and the customers read what the single desk's say. Which
    password resets win the rate limit's 20 slots depends on timing in each demo, so the
    words are compared as a multiset over the escalated tickets, not ticket by ticket."""
    said = Counter(r.output for _, r in single[0].results if r.status is RunStatus.ESCALATED)
    report, db, _ = multi
    escalated = [(t, r) for t, r in report.results if r.status is RunStatus.ESCALATED]
    assert len(escalated) == 37
    after_a_desk = 0
    for ticket, result in escalated:
        tree = run_tree(db, result.run_id)
        last = tree[-1]
        assert last.agent == "escalation", (ticket.id, [r.agent for r in tree])
        if last.hop == 2:
            after_a_desk += 1
            desk = tree[1]
            assert last.parent_run_id == desk.id and desk.agent != "escalation"
            assert last.input.startswith(f"Unresolved at the {desk.agent} desk: ")
        assert {(r.status, r.reason_code) for r in tree} == {
            ("escalated", "escalation.low_confidence")
        }
        assert "tier-2-support" in result.reason
    assert after_a_desk == 29
    assert Counter(r.output for _, r in escalated) == said


def test_side_effects_match_the_single_desks(
    single: tuple[DemoReport, Database, Path], multi: tuple[DemoReport, Database, Path]
) -> None:
    counts = []
    for _, _, path in (single, multi):
        systems = SupportSystems.open(path)
        try:
            counts.append(
                {t: systems.count(t) for t in ("refunds", "deletions", "password_resets")}
            )
        finally:
            systems.close()
    assert counts[0] == counts[1] == {"refunds": 25, "deletions": 0, "password_resets": 20}


def test_waiting_tickets_wait_on_the_refunds_desks_approval(
    multi: tuple[DemoReport, Database, Path],
) -> None:
    report, db, _ = multi
    waiting = [r for _, r in report.results if r.status is RunStatus.WAITING]
    assert len(waiting) == 25
    for result in waiting:
        child = run_tree(db, result.run_id)[1]
        assert child.agent == "refunds" and child.status == "waiting"
