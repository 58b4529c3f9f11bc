"""Suite files: every problem located by file, line, column and field (like specs)."""

from __future__ import annotations

import pytest

from steward.core.errors import SpecError
from steward.evals.load import load_suite, load_suite_text

GOOD = """\
name: tiny
systems: fixtures
cases:
  - id: one
    input: where is order 10001
    expect:
      status: succeeded
      calls: [{tool: lookup_order, args: {order_id: "10001", amount: {max: 5}}}]
      answer: {contains: shipped, numbers: [{value: 3, tolerance: 0.5}]}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_suite_text(text, "suite.yaml")
    return [p.render() for p in caught.value.problems]


def test_a_good_suite_loads_with_shorthands() -> None:
    suite = load_suite_text(GOOD, "suite.yaml")
    call = suite.cases[0].expect.calls[0]
    assert call.args["order_id"].equals == "10001"
    assert call.args["amount"].max == 5
    assert suite.cases[0].expect.answer is not None
    assert suite.cases[0].expect.answer.contains == ("shipped",)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("      status: succeeded\n", "      status: done\n"),
         "suite.yaml:7:7: cases[0].expect.status: String should match pattern"),
        (("    input: where", "    inptu: x\n    input: where"),
         "suite.yaml:5:5: cases[0].inptu: unknown key 'inptu'"),
        (("answer: {contains: shipped", "answer: {regex: '(unclosed', contains: shipped"),
         "suite.yaml:9:16: cases[0].expect.answer.regex: regular expression does not compile"),
        (("systems: fixtures", "systems: sandbox"),
         "suite.yaml:2:1: systems: systems: sandbox needs a `toolset`"),
        (("      status: succeeded\n", "      status: succeeded\n      judged: [polite]\n"),
         "suite.yaml:8:7: cases[0].expect.judged: judged criteria need a `judge:` section"),
        (("amount: {max: 5}", "amount: {max: 5, regex: x}"),
         "give exactly one of equals, contains, regex, min/max, present"),
    ],
)  # fmt: skip
def test_problems_are_located(change: tuple[str, str], expected: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    found = problems_of(text)
    assert any(expected in p for p in found), found


def test_duplicate_case_ids_are_located() -> None:
    text = GOOD + "  - id: one\n    input: again\n    expect: {status: succeeded}\n"
    assert problems_of(text) == ["suite.yaml:10:5: cases[1].id: duplicate case id 'one'"]


def test_an_empty_case_list_is_one_located_problem() -> None:
    assert problems_of("name: tiny\nsystems: fixtures\ncases: []\n") == [
        "suite.yaml:3:1: cases: a suite needs at least one case"
    ]


def test_missing_suite_file_is_not_found() -> None:
    from steward.core.errors import SpecFileMissing

    with pytest.raises(SpecFileMissing):
        load_suite("/nonexistent/suite.yaml")


def test_the_demo_suite_covers_every_ticket_category() -> None:
    from importlib import resources

    from steward.demo.tickets import load_tickets

    text = resources.files("steward.demo").joinpath("support_suite.yaml").read_text("utf-8")
    suite = load_suite_text(text, "support_suite.yaml")
    assert len(suite.cases) >= 50
    categories = {t.category for t in load_tickets()}
    assert {tag for c in suite.cases for tag in c.tags} == categories
    assert suite.systems.value == "sandbox"
