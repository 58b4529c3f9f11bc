"""Baseline regressions: a required case that passed may not fail; the scored pass rate
may not drop by more than its binomial noise. Results round-trip through JSON."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from steward.core.errors import InvalidInput
from steward.evals.results import (
    CaseResult,
    SuiteResult,
    compare,
    junit_xml,
    rate_noise,
    read_result,
)


def result(required: dict[str, bool], scored_passed: int, scored_total: int) -> SuiteResult:
    cases = [CaseResult(i, True, "pass" if ok else "fail") for i, ok in required.items()]
    cases += [CaseResult(f"s{i}", False, "pass" if i < scored_passed else "fail")
              for i in range(scored_total)]  # fmt: skip
    return SuiteResult("suite", "agent", "v1", "sandbox", 0.0, 1.0, cases)


def test_a_required_case_that_passed_and_now_fails_is_a_regression() -> None:
    before = result({"a": True, "b": False}, 0, 0)
    now = result({"a": False, "b": False}, 0, 0)
    assert compare(before, now).cases == ["a"]
    assert compare(before, result({"a": True, "b": False}, 0, 0)).any is False


def test_noise_is_the_pooled_two_proportion_standard_error() -> None:
    pooled = (0.9 * 50 + 0.8 * 50) / 100
    assert rate_noise(0.9, 50, 0.8, 50) == pytest.approx(
        1.96 * math.sqrt(pooled * (1 - pooled) * (2 / 50))
    )


def test_a_drop_within_noise_passes_and_beyond_it_regresses() -> None:
    before = result({}, 45, 50)  # 90%
    small = compare(before, result({}, 42, 50))  # 84%: noise ≈ 13 points
    assert small.scored_drop == pytest.approx(0.06) and not small.scored_regressed
    large = compare(before, result({}, 30, 50))  # 60%
    assert large.scored_regressed and large.any
    perfect = compare(result({}, 50, 50), result({}, 49, 50))  # no spread before: noise small
    assert perfect.scored_noise is not None and perfect.scored_drop == pytest.approx(0.02)


def test_results_round_trip_and_junit_fails_only_required_cases(tmp_path: Path) -> None:
    before = result({"a": True, "b": False}, 1, 2)
    before.write_json(tmp_path / "r.json")
    again = read_result(tmp_path / "r.json")
    assert again.summary() == before.summary() and [c.id for c in again.cases] == [
        "a",
        "b",
        "s0",
        "s1",
    ]
    root = ET.fromstring(junit_xml(before))
    assert root.get("failures") == "1"
    assert [t.get("name") for t in root.iter("testcase") if t.find("failure") is not None] == ["b"]
    assert [t.get("name") for t in root.iter("testcase") if t.find("skipped") is not None] == ["s1"]


def test_a_file_that_is_not_a_result_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"suite": 1}')
    with pytest.raises(InvalidInput):
        read_result(tmp_path / "x.json")


def test_a_baseline_must_exist_and_be_of_the_same_suite(tmp_path: Path) -> None:
    from steward.core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        read_result(tmp_path / "missing.json")
    other = result({"a": True}, 0, 0)
    other.suite = "another"
    with pytest.raises(InvalidInput, match="baseline"):
        compare(other, result({"a": True}, 0, 0))
