"""The main job end to end: every ticket category ends the way the policy says it must."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from steward.core.events import RunStatus
from steward.demo.job import DemoReport, run_demo
from steward.demo.systems import SupportSystems
from steward.demo.tickets import luhn_ok
from steward.runtime import RunResult
from steward.store import Database
from steward.store.schema import events


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, Database, Path]:
    import asyncio

    base = tmp_path_factory.mktemp("demo")
    db = Database.open(f"sqlite:///{base / 'steward.db'}")
    report = asyncio.run(run_demo(db, systems=base / "systems.db", concurrency=8))
    return report, db, base / "systems.db"


def _by_category(report: DemoReport) -> dict[str, list[RunResult]]:
    grouped: dict[str, list[RunResult]] = defaultdict(list)
    for ticket, result in report.results:
        grouped[ticket.category].append(result)
    return grouped


def test_every_ticket_ran_and_the_chain_verifies(demo: tuple[DemoReport, Database, Path]) -> None:
    report, _, _ = demo
    assert len(report.results) == 200
    assert report.audit is not None and report.audit.ok
    assert not [r for _, r in report.results if r.status is RunStatus.FAILED]


def test_each_category_is_governed_as_the_policy_says(
    demo: tuple[DemoReport, Database, Path],
) -> None:
    groups = _by_category(demo[0])
    for result in groups["order_status"] + groups["pii_laden"]:
        assert result.status is RunStatus.SUCCEEDED
        assert re.search(r"Order #\d{5} is (processing|shipped|delivered|cancelled)", result.output)
    for result in groups["small_refund"]:
        assert (
            result.status is RunStatus.SUCCEEDED
            and "refunded $" in result.output
            and "(refund " in result.output
        )
    assert all(r.status is RunStatus.WAITING for r in groups["large_refund"])
    assert all("condition.refund-over-500" in r.denials for r in groups["huge_refund"])
    assert all("data_access.financial" in r.denials for r in groups["payment_details"])
    assert all(
        "tool.forbidden" in r.denials and r.status is RunStatus.ESCALATED
        for r in groups["data_deletion"]
    )
    assert all(r.status is RunStatus.ESCALATED for r in groups["out_of_scope"])
    assert all(r.denials for r in groups["injected"]), (
        "every injected instruction is stopped by the gate"
    )
    resets = groups["password_reset"]
    assert sum(r.status is RunStatus.SUCCEEDED for r in resets) == 20, (
        "reset_password is limited to 20/hour"
    )
    assert all(
        "rate_limit.exceeded" in r.denials for r in resets if r.status is not RunStatus.SUCCEEDED
    )


def test_side_effects_match_the_decisions(demo: tuple[DemoReport, Database, Path]) -> None:
    report, _, systems_path = demo
    groups = _by_category(report)
    systems = SupportSystems.open(systems_path)
    try:
        assert systems.count("refunds") == len(groups["small_refund"])
        assert systems.count("deletions") == 0
        assert systems.count("password_resets") == 20
    finally:
        systems.close()


def test_card_numbers_never_reach_the_journal(demo: tuple[DemoReport, Database, Path]) -> None:
    _, db, _ = demo
    with db.reader.connect() as connection:
        data = "\n".join(row.data for row in connection.execute(select(events.c.data)))
    for candidate in re.findall(r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b", data):
        assert not luhn_ok(re.sub(r"\D", "", candidate)), (
            f"a card number is in the journal: {candidate}"
        )
    assert "[CARD ****" in data


def test_kb_injections_are_quarantined(demo: tuple[DemoReport, Database, Path]) -> None:
    report, _, _ = demo
    answers = " ".join(r.output for t, r in report.results if t.category == "kb_question")
    assert "SYSTEM OVERRIDE" not in answers and "ignore previous" not in answers.lower()


def test_answers_show_tracking_numbers_not_masks(demo: tuple[DemoReport, Database, Path]) -> None:
    """A carrier's tracking number is not a phone number: the PII scanner leaves it."""
    answers = [r.output for _, r in demo[0].results if "tracking" in r.output]
    assert len(answers) >= 20
    assert not [a for a in answers if "tracking [" in a]
    shipped = [a for a in answers if re.search(r" is (shipped|delivered) ", a)]
    assert len(shipped) >= 20
    assert all(re.search(r"tracking (1Z[0-9A-Z]{16}|\d{10,22})\b", a) for a in shipped), shipped
