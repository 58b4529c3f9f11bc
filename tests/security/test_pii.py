"""Validated PII detectors: the shipped labelled set's targets hold, tracking numbers and
other ids are never PII, and each validator follows its kind's rules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from steward.security.pii import find_pii, iban_ok, ssn_ok
from steward.security.scanners import redact_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_pii


def test_the_labelled_set_meets_the_targets() -> None:
    rows = bench_pii.load()
    assert len(rows) >= 300
    assert sum(not r["entities"] for r in rows) >= 100, "hard negatives too"
    scores, errors = bench_pii.evaluate(rows)
    for kind, score in scores.items():
        assert score.tp > 0, kind
        assert score.precision >= bench_pii.PRECISION_TARGET, (kind, errors)
        assert score.recall >= bench_pii.RECALL_TARGET, (kind, errors)


@pytest.mark.parametrize(
    "text",
    [
        "Order #10047 is shipped (carrier DHL, tracking 4155550132, expected 2025-07-02).",
        "carrier FedEx, tracking 748923456789",
        "Your UPS package 1Z999AA10123456784 left the depot",
        "USPS 9400 1112 0255 5842 3328 11",
        "invoice 2125550147 is due on 05/26/2024",
        "server 192.168.100.200 rebooted at 14:30",
    ],
)
def test_tracking_numbers_ids_dates_and_ips_are_not_pii(text: str) -> None:
    assert find_pii(text) == []
    assert redact_text(text) == (text, ())


def test_each_kind_is_masked() -> None:
    text = (
        "card 4111 1111 1111 1111, ssn 536-22-1234, iban DE89 3704 0044 0532 0130 00, "
        "mail ann@example.com, phone +1 415-555-0132"
    )
    masked, kinds = redact_text(text)
    assert masked == ("card [CARD ****1111], ssn [SSN], iban [IBAN], mail [EMAIL], phone [PHONE]")
    assert set(kinds) == {"pii.card_number", "pii.ssn", "pii.iban", "pii.email", "pii.phone"}


def test_validators_follow_the_rules() -> None:
    assert iban_ok("DE89370400440532013000")
    assert not iban_ok("DE89370400440532013001")  # checksum
    assert not iban_ok("DE8937040044053201300")  # Germany's length is 22
    assert ssn_ok("536221234")
    for bad in ("000221234", "666221234", "900221234", "536001234", "536220000"):
        assert not ssn_ok(bad), bad
    assert find_pii("4111 1111 1111 1112") == []  # Luhn
    assert find_pii("bare 4155550132") == []  # a bare digit run needs a phone word
    assert [m.canonical for m in find_pii("mobile 4155550132")] == ["+14155550132"]
