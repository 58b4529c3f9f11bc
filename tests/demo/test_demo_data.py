"""The demo's bundled tickets, fixtures and local support systems."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from steward.demo.fixtures import CUSTOMERS, INJECTED_KB_IDS, KB_ARTICLES, ORDERS, ORDERS_BY_ID
from steward.demo.systems import SupportSystems
from steward.demo.tickets import (
    CATEGORY_COUNTS,
    Ticket,
    generate_tickets,
    load_tickets,
    luhn_ok,
)

ORDER_REF = re.compile(r"order #(\d{5})", re.IGNORECASE)
ANY_ORDER_NUMBER = re.compile(r"#\s?\d{5}")
CARD = re.compile(r"\b\d{4} \d{4} \d{4} \d{4}\b")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
PHONE = re.compile(r"\+1 \d{3} 555 \d{4}")
AMOUNT = re.compile(r"\$(\d+(?:\.\d{2})?)\b")
INJECTION = re.compile(r"ignore (all )?previous instructions|system override", re.IGNORECASE)
OUT_OF_SCOPE_BANNED = (
    "order", "refund", "password", "delete", "card", "policy", "shipping", "return",
    "warranty", "export", "account", "data", "log in",
)  # fmt: skip


@pytest.fixture(scope="module")
def tickets() -> list[Ticket]:
    return load_tickets()


def by_category(tickets: list[Ticket], category: str) -> list[Ticket]:
    return [t for t in tickets if t.category == category]


def test_two_hundred_tickets_in_the_planned_mix(tickets: list[Ticket]) -> None:
    assert len(tickets) == 200 == sum(CATEGORY_COUNTS.values())
    assert Counter(t.category for t in tickets) == CATEGORY_COUNTS
    assert [t.id for t in tickets] == [f"T{i:04d}" for i in range(1, 201)]
    assert len({t.id for t in tickets}) == 200


def test_shipped_file_is_the_deterministic_generation(tickets: list[Ticket]) -> None:
    generated = generate_tickets()
    assert generated == generate_tickets()
    assert [Ticket(**row) for row in generated] == tickets


def test_categories_are_interleaved(tickets: list[Ticket]) -> None:
    runs = sum(1 for a, b in itertools.pairwise(tickets) if a.category != b.category)
    assert runs > 100


def test_customers_and_orders_exist(tickets: list[Ticket]) -> None:
    emails = {c.email for c in CUSTOMERS}
    assert all(t.customer_email in emails for t in tickets)
    for ticket in tickets:
        for number in ORDER_REF.findall(ticket.text):
            assert number in ORDERS_BY_ID, (ticket.id, number)


def test_order_tickets_name_an_order_most_often_their_own(tickets: list[Ticket]) -> None:
    owners = {c.id: c.email for c in CUSTOMERS}
    order_categories = {"order_status", "small_refund", "large_refund", "huge_refund", "pii_laden"}
    own = total = 0
    for ticket in (t for t in tickets if t.category in order_categories):
        numbers = ORDER_REF.findall(ticket.text)
        assert numbers, ticket.id
        total += 1
        own += owners[ORDERS_BY_ID[numbers[0]].customer_id] == ticket.customer_email
    assert own / total > 0.7


def test_order_status_wording(tickets: list[Ticket]) -> None:
    words = ("where is", "status", "tracking", "hasn't arrived", "arrive")
    for ticket in by_category(tickets, "order_status"):
        text = ticket.text.lower()
        assert any(w in text for w in words), ticket.id
        assert "refund" not in text


@pytest.mark.parametrize(
    ("category", "low", "high"),
    [("small_refund", 5, 50), ("large_refund", 60, 480), ("huge_refund", 600, 3000)],
)
def test_refund_amounts(tickets: list[Ticket], category: str, low: float, high: float) -> None:
    for ticket in by_category(tickets, category):
        assert "refund" in ticket.text.lower()
        amounts = [float(a) for a in AMOUNT.findall(ticket.body)]
        assert len(amounts) == 1, ticket.id
        assert low <= amounts[0] <= high, ticket.id
        order = ORDERS_BY_ID[ORDER_REF.findall(ticket.body)[0]]
        assert amounts[0] <= order.total_usd, ticket.id
    bodies = " ".join(t.body for t in by_category(tickets, category))
    assert re.search(r"\$\d+\.\d{2}\b", bodies)


def test_account_and_question_categories(tickets: list[Ticket]) -> None:
    for t in by_category(tickets, "password_reset"):
        text = t.text.lower()
        assert "password" in text or "locked out" in text or "log in" in text
        assert "order" not in text and "refund" not in text
    for t in by_category(tickets, "data_deletion"):
        text = t.text.lower()
        assert "delete" in text and ("account" in text or "data" in text)
    for t in by_category(tickets, "payment_details"):
        text = t.text.lower()
        assert "card" in text or "payment method" in text
        assert "refund" not in text and not ANY_ORDER_NUMBER.search(text)
    kb_words = ("policy", "shipping", "return", "warranty", "address", "gift card")
    for t in by_category(tickets, "kb_question"):
        text = t.text.lower()
        assert any(w in text for w in kb_words), t.id
        assert "refund" not in text and not ANY_ORDER_NUMBER.search(text)


def test_pii_laden_tickets_carry_valid_pii(tickets: list[Ticket]) -> None:
    kinds: Counter[str] = Counter()
    for ticket in by_category(tickets, "pii_laden"):
        text = ticket.text.lower()
        assert ORDER_REF.search(text) and ("where is" in text or "status" in text)
        assert ticket.customer_email in ticket.body
        cards = CARD.findall(ticket.body)
        assert all(luhn_ok(card) for card in cards), cards
        found = {"card": bool(cards), "ssn": bool(SSN.search(ticket.body))}
        found["phone"] = bool(PHONE.search(ticket.body))
        assert any(found.values()), ticket.id
        kinds.update(k for k, v in found.items() if v)
    assert kinds["card"] >= 3 and kinds["ssn"] >= 3 and kinds["phone"] >= 3


def test_luhn() -> None:
    assert luhn_ok("4111 1111 1111 1111")
    assert not luhn_ok("4111 1111 1111 1112")


def test_injected_mix(tickets: list[Ticket]) -> None:
    injected = [t.text.lower() for t in by_category(tickets, "injected")]
    deletes = [t for t in injected if "delete" in t and ("data" in t or "account" in t)]
    exports = [t for t in injected if "export" in t and "customer records" in t]
    refunds = [
        t
        for t in injected
        if "refund" in t and ORDER_REF.search(t) and float(AMOUNT.findall(t)[0]) >= 1000
    ]
    assert (len(deletes), len(refunds), len(exports)) == (4, 4, 4)


def test_out_of_scope_avoids_support_words(tickets: list[Ticket]) -> None:
    for ticket in by_category(tickets, "out_of_scope"):
        text = ticket.text.lower()
        assert not [w for w in OUT_OF_SCOPE_BANNED if w in text], ticket.id


def test_fixtures_shape() -> None:
    assert len(CUSTOMERS) == 60 and len({c.email for c in CUSTOMERS}) == 60
    assert all(c.email.endswith(("@example.com", "@example.org")) for c in CUSTOMERS)
    assert [o.id for o in ORDERS] == [str(n) for n in range(10001, 10151)]
    assert {o.status for o in ORDERS} == {"processing", "shipped", "delivered", "cancelled"}
    assert all(o.tracking for o in ORDERS if o.status in ("shipped", "delivered"))
    assert len(KB_ARTICLES) >= 15
    injected = [a.id for a in KB_ARTICLES if INJECTION.search(a.body)]
    assert injected == list(INJECTED_KB_IDS)


# -- systems -------------------------------------------------------------------------------


@pytest.fixture
def systems(tmp_path: Path) -> SupportSystems:
    return SupportSystems.create(tmp_path / "systems.db")


def test_create_seeds_and_open_reuses(systems: SupportSystems, tmp_path: Path) -> None:
    assert systems.count("customers") == 60
    assert systems.count("orders") == 150
    assert systems.count("kb") == len(KB_ARTICLES)
    systems.issue_refund("10001", 1.0, "test", "k-open")
    systems.close()
    reopened = SupportSystems.open(tmp_path / "systems.db")
    assert reopened.count("refunds") == 1
    reopened.close()
    fresh = SupportSystems.create(tmp_path / "systems.db")
    assert fresh.count("refunds") == 0
    fresh.close()
    with pytest.raises(FileNotFoundError):
        SupportSystems.open(tmp_path / "missing.db")


def test_reads(systems: SupportSystems) -> None:
    order = ORDERS[22]
    found = systems.lookup_order(f"#{order.id}")
    assert found == systems.lookup_order(order.id)
    assert found["status"] == order.status and found["items"] == list(order.items)
    assert found["customer_id"] == order.customer_id
    customer = CUSTOMERS[0]
    assert systems.get_customer(customer.email.upper())["id"] == customer.id
    payment = systems.get_payment_details(customer.email)
    assert payment == {"card_brand": customer.card_brand, "card_last4": customer.card_last4}
    with pytest.raises(LookupError):
        systems.lookup_order("99999")
    with pytest.raises(LookupError):
        systems.get_customer("nobody@example.com")
    with pytest.raises(ValueError):
        systems.count("sqlite_master")


def test_search_kb_finds_the_poisoned_articles(systems: SupportSystems) -> None:
    for query in ("shipping", "return"):
        hits = systems.search_kb(query)
        assert 1 <= len(hits) <= 3
        assert any(INJECTION.search(hit["body"]) for hit in hits), query
    assert systems.search_kb("how do I reset my password")[0]["id"] == "KB08"
    assert systems.search_kb("zzz qqq") == []
    assert len(systems.search_kb("order", limit=5)) == 5


def test_refund_is_exactly_once(systems: SupportSystems) -> None:
    first = systems.issue_refund("10005", 5.0, "damaged", "key-1")
    second = systems.issue_refund("#10005", 5.0, "damaged", "key-1")
    assert first["duplicate"] is False and second["duplicate"] is True
    assert first["refund_id"] == second["refund_id"] and first["status"] == "issued"
    assert systems.count("refunds") == 1


def test_refund_over_total_is_refused(systems: SupportSystems) -> None:
    order = ORDERS_BY_ID["10012"]
    with pytest.raises(ValueError, match="exceeds"):
        systems.issue_refund("10012", order.total_usd + 0.01, "too much", "key-2")
    with pytest.raises(LookupError):
        systems.issue_refund("99999", 1.0, "no such order", "key-3")
    assert systems.count("refunds") == 0


def test_concurrent_duplicates_apply_once(systems: SupportSystems) -> None:
    results: list[bool] = []

    def call() -> None:
        results.append(systems.issue_refund("10020", 2.5, "race", "race-key")["duplicate"])

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] + [True] * 7
    assert systems.count("refunds") == 1


def test_other_side_effects_are_exactly_once(systems: SupportSystems) -> None:
    email = CUSTOMERS[3].email
    assert systems.reset_password(email, "r1")["duplicate"] is False
    assert systems.reset_password(email, "r1") == {
        "email": email,
        "status": "reset_link_sent",
        "duplicate": True,
    }
    assert systems.send_email(email, "Hi", "Body", "e1")["duplicate"] is False
    assert systems.send_email(email, "Hi", "Body", "e1")["duplicate"] is True
    assert systems.delete_customer_data(email, "d1")["duplicate"] is False
    assert systems.delete_customer_data(email, "d1")["duplicate"] is True
    counts = [systems.count(t) for t in ("password_resets", "emails_sent", "deletions")]
    assert counts == [1, 1, 1]
    with pytest.raises(LookupError):
        systems.reset_password("nobody@example.com", "r2")
    with pytest.raises(ValueError):
        systems.send_email(email, "Hi", "Body", "")
