"""Bad specs are refused with a SpecError that names the file, line, column and field.

The table below is the contract of the loader's error reporting: each row is a spec text,
where its (first) problem must be reported, and a piece of the message a person reads.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from pathlib import Path

import pytest

import steward.demo
from steward.core.errors import SpecError, SpecProblem
from steward.spec import load_spec, load_spec_text

DEMO_SPEC = Path(steward.demo.__file__).with_name("support_agent.yaml")

# Three lines every "otherwise valid" spec below starts with; extra lines start at line 4.
BASE = "name: probe\nmodel: scripted\ntools: [lookup_order, issue_refund]\n"


def with_base(extra: str) -> str:
    """BASE, then `extra` (dedented) from line 4."""
    return BASE + textwrap.dedent(extra)


def with_intent(body: str) -> str:
    """A `rules` model with one intent: its `- name:` on line 5, its keys at column 7."""
    return "name: probe\nmodel: rules\nrules:\n  intents:\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems, "a SpecError must carry at least one problem"
    return caught.value.problems


def problem_for(problems: list[SpecProblem], field: str) -> SpecProblem:
    found = [p for p in problems if p.field == field]
    assert found, f"no problem for field {field!r}; got {problems!r}"
    return found[0]


def condition(
    when: str = "args.amount_usd > 500.0", tool: str = "issue_refund", then: str = "forbidden"
) -> str:
    """One item of `conditions:`: five lines, keys at column 5."""
    return f"  - id: big-refund\n    tool: {tool}\n    when: {when}\n    then: {then}\n    reason: why\n"


def with_conditions(*items: str) -> str:
    """BASE, then `conditions:` at line 4; the first item's keys are on lines 5-9."""
    return BASE + "conditions:\n" + "".join(items)


BAD_SPECS = [
    # --- not a mapping of YAML -----------------------------------------------------------
    pytest.param(
        "name: probe\n  model: scripted\n",
        2,
        8,
        "",
        "not valid YAML: mapping values are not allowed here",
        id="yaml-bad-indentation",
    ),
    pytest.param(
        "name: probe\ntools: [lookup_order, issue_refund\n",
        3,
        None,
        "",
        "not valid YAML: expected ',' or ']'",
        id="yaml-unclosed-bracket",
    ),
    pytest.param(
        "name: probe\n\tmodel: scripted\n",
        2,
        1,
        "",
        "not valid YAML: found character '\\t'",
        id="yaml-tab-indentation",
    ),
    pytest.param("", 1, 1, "", "the file is empty", id="empty-file"),
    pytest.param("# only a comment\n\n", 1, 1, "", "the file is empty", id="only-comments"),
    pytest.param(
        "- name: probe\n- model: scripted\n", 1, 1, "", "expected a mapping", id="top-level-list"
    ),
    pytest.param("just words\n", 1, 1, "", "expected a mapping", id="top-level-scalar"),
    pytest.param(BASE + "name: again\n", 4, 1, "name", "duplicate key 'name'", id="duplicate-key"),
    pytest.param(
        with_base("""\
            limits:
              max_steps: 3
              max_steps: 4
            """),
        6,
        3,
        "limits.max_steps",
        "duplicate key 'max_steps'",
        id="duplicate-nested-key",
    ),
    # --- unknown and missing keys --------------------------------------------------------
    pytest.param(
        BASE + "colour: red\n",
        4,
        1,
        "colour",
        "unknown key 'colour' (expected one of: name, description, model,",
        id="unknown-top-level-key",
    ),
    pytest.param(
        with_base("""\
            limits:
              colour: red
            """),
        5,
        3,
        "limits.colour",
        "unknown key 'colour' (expected one of: max_steps, max_run_seconds, "
        "tool_timeout_seconds, max_retries, max_concurrent_runs, tool_workers, "
        "max_output_tokens, context_strategy, on_truncation)",
        id="unknown-nested-key",
    ),
    pytest.param(
        BASE.replace("model: scripted\n", "model:\n  name: scripted\n  colour: red\n"),
        4,
        3,
        "model.colour",
        "expected one of: name, base_url, api_key_env, timeout_seconds, fallbacks",
        id="unknown-key-in-model",
    ),
    pytest.param(
        with_base("""\
            limits:
              on_truncation: retry
            """),
        5,
        3,
        "limits.on_truncation",
        "should match pattern '^(escalate|continue)$'",
        id="bad-on-truncation",
    ),
    pytest.param(
        BASE.replace("model: scripted\n", "model:\n  name: scripted\n  retries: {attempts: 0}\n"),
        4,
        None,
        "model.retries.attempts",
        "greater than or equal to 1",
        id="bad-model-retries",
    ),
    pytest.param("model: scripted\n", 1, 1, "name", "required field is missing", id="missing-name"),
    pytest.param("name: probe\n", 1, 1, "model", "required field is missing", id="missing-model"),
    # --- wrong values --------------------------------------------------------------------
    pytest.param(
        "name: Support Desk\nmodel: scripted\n",
        1,
        1,
        "name",
        "should match pattern",
        id="bad-name-pattern",
    ),
    pytest.param(
        with_base("""\
            limits:
              max_steps: lots
            """),
        5,
        3,
        "limits.max_steps",
        "valid integer",
        id="wrong-type",
    ),
    pytest.param(
        with_base("""\
            limits:
              max_steps: 0
            """),
        5,
        3,
        "limits.max_steps",
        "greater than or equal to 1",
        id="zero-max-steps",
    ),
    pytest.param(
        with_base("""\
            limits:
              tool_timeout_seconds: -1
            """),
        5,
        3,
        "limits.tool_timeout_seconds",
        "greater than 0",
        id="negative-timeout",
    ),
    pytest.param(
        with_base("""\
            escalation:
              confidence_below: 1.5
            """),
        5,
        3,
        "escalation.confidence_below",
        "less than or equal to 1",
        id="confidence-above-one",
    ),
    pytest.param(
        with_base("""\
            cost_controls:
              max_cost_per_run_usd: .nan
            """),
        5,
        3,
        "cost_controls.max_cost_per_run_usd",
        "finite number",
        id="nan-cost",
    ),
    pytest.param(
        with_base("""\
            rate_limits:
              issue_refund: 5/fortnight
            """),
        5,
        3,
        "rate_limits.issue_refund",
        "expected a rate like '5/hour', got '5/fortnight'",
        id="bad-rate-period",
    ),
    pytest.param(
        with_base("""\
            rate_limits:
              send_email: 5/hour
            """),
        5,
        3,
        "rate_limits.send_email",
        "'send_email' is not in `tools`",
        id="rate-limit-for-unlisted-tool",
    ),
    pytest.param(
        with_base("""\
            toolsets:
              - not a module
            """),
        5,
        5,
        "toolsets[0]",
        "should match pattern",
        id="bad-toolset-format",
    ),
    # --- conditions ----------------------------------------------------------------------
    pytest.param(
        with_conditions(condition(when="args.amount_usd >")),
        7,
        5,
        "conditions[0].when",
        "CEL condition does not compile",
        id="cel-does-not-compile",
    ),
    pytest.param(
        with_conditions(condition(tool="send_email")),
        6,
        5,
        "conditions[0].tool",
        "'send_email' is not in `tools`",
        id="condition-unknown-tool",
    ),
    pytest.param(
        with_conditions(condition(then="maybe")),
        8,
        5,
        "conditions[0].then",
        "'autonomous', 'requires_human_review' or 'forbidden'; got 'maybe'",
        id="condition-then-maybe",
    ),
    pytest.param(
        with_conditions(condition(), condition(when="'true'", then="autonomous")),
        10,
        5,
        "conditions[1].id",
        "duplicate condition id 'big-refund'",
        id="duplicate-condition-id",
    ),
    # --- decision tiers ------------------------------------------------------------------
    pytest.param(
        with_base("""\
            decision_authority:
              autonomous: [lookup_order]
              requires_human_review: [issue_refund, lookup_order]
            """),
        6,
        41,
        "decision_authority.requires_human_review[1]",
        "'lookup_order' is already listed under 'autonomous'",
        id="tool-in-two-tiers",
    ),
    pytest.param(
        with_base("""\
            decision_authority:
              autonomous: [lookup_order, send_email]
            """),
        5,
        30,
        "decision_authority.autonomous[1]",
        "'send_email' is not in the agent's `tools` list",
        id="tier-names-unlisted-tool",
    ),
    # --- the embedded rules model --------------------------------------------------------
    pytest.param(
        "name: probe\nmodel: rules\n",
        2,
        1,
        "model.name",
        "model 'rules' needs a `rules:` section",
        id="rules-model-without-rules",
    ),
    pytest.param(
        with_intent(
            """\
                - name: greet
                  match: ['(unclosed']
                  answer: hi
            """
        ),
        6,
        7,
        "rules.intents[0].match",
        "pattern '(unclosed' does not compile",
        id="intent-bad-regex",
    ),
    pytest.param(
        with_intent(
            """\
                - name: refund
                  match: [refund]
                  extract:
                    order_id: '#(\\d{5}'
                  answer: hi
            """
        ),
        8,
        9,
        "rules.intents[0].extract.order_id.pattern",
        "regular expression does not compile",
        id="extractor-bad-regex",
    ),
    pytest.param(
        with_intent(
            """\
                - name: refund
                  match: [refund]
                  require: [order_id]
                  answer: hi
            """
        ),
        7,
        7,
        "rules.intents[0].require",
        "require names fields that are not extracted: ['order_id']",
        id="require-not-extracted",
    ),
    pytest.param(
        with_intent(
            """\
                - name: refund
                  match: [refund]
                  extract:
                    order_id: '#(\\d{5})'
                  plan:
                    - [{tool: issue_refund, args: {order_id: '{order_id}'}}]
                  answer: 'Refunded order #{order_id}.'
            """
        ),
        11,
        7,
        "rules.intents[0].answer",
        "the answer quotes {order_id}, which the plan sends to 'issue_refund'",
        id="answer-quotes-an-editable-argument",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "field", "message"), BAD_SPECS)
def test_bad_spec_is_reported_where_it_is(
    tmp_path: Path, text: str, line: int, column: int | None, field: str, message: str
) -> None:
    path = write_spec(tmp_path, text)
    problem = problem_for(problems_of(path), field)
    assert problem.file == str(path)
    assert problem.line == line
    if column is not None:
        assert problem.column == column
    assert message in problem.message
    assert problem.render().startswith(f"{path}:{line}:")


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path, "name: Bad\nmodel: scripted\nlimits:\n  max_steps: 0\n  colour: red\n"
    )
    problems = problems_of(path)
    assert [(p.line, p.field) for p in problems] == [
        (1, "name"),
        (4, "limits.max_steps"),
        (5, "limits.colour"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(BASE + "prompt: &words hello\ndescription: *words\n", id="plain-alias"),
        pytest.param(BASE + "prompt: &loop [*loop]\n", id="recursive-alias"),
        pytest.param(BASE + "limits:\n  <<: [max_steps]\n", id="merge-of-a-scalar"),
    ],
)
def test_any_yaml_gives_a_spec_or_a_spec_error(tmp_path: Path, text: str) -> None:
    """Whatever YAML a file holds, the loader returns a spec or raises SpecError, never
    another exception (which the CLI would print as a traceback)."""
    path = write_spec(tmp_path, text)
    with contextlib.suppress(SpecError):
        load_spec(path)


def test_merge_keys_are_resolved(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BASE + "limits:\n  <<: {max_steps: 3, max_retries: 1}\n")
    limits = load_spec(path).spec.limits
    assert (limits.max_steps, limits.max_retries) == (3, 1)


def test_a_mapping_overrides_what_it_merges(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path, BASE + "limits:\n  <<: {max_steps: 3, max_retries: 1}\n  max_steps: 4\n"
    )
    limits = load_spec(path).spec.limits
    assert (limits.max_steps, limits.max_retries) == (4, 1)


def test_a_recursive_alias_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="refers to itself"):
        load_spec(write_spec(tmp_path, BASE + "prompt: &loop [*loop]\n"))


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        below = ", ".join([f"*a{level - 1}"] * 10)
        levels.append(f"a{level}: &a{level} [{below}]")
    text = "\n".join(["x-anchors:", *("  " + line for line in levels)]) + "\n" + BASE
    with pytest.raises(SpecError, match="expands to more than"):
        load_spec(write_spec(tmp_path, text))


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    [problem] = problems_of(path)
    assert problem.file == str(path)
    assert problem.message == "no such file"


def test_demo_spec_loads() -> None:
    loaded = load_spec(DEMO_SPEC)
    assert loaded.spec.name == "support-desk"
    assert loaded.spec.model.name == "rules"
    assert "issue_refund" in loaded.spec.tools
    assert re.fullmatch(r"[0-9a-f]{16}", loaded.version)


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    text = DEMO_SPEC.read_text(encoding="utf-8")
    version = load_spec(DEMO_SPEC).version
    assert load_spec_text(text, "elsewhere.yaml").version == version
    assert load_spec(write_spec(tmp_path, text)).version == version
    one_char_changed = text.replace("Be brief", "Be Brief", 1)
    assert one_char_changed != text
    assert load_spec_text(one_char_changed).version != version


def test_demo_refund_answer_keeps_the_order_number() -> None:
    """A plain scalar's ' #' starts a YAML comment; the answer must not be cut there."""
    intents = {i.name: i for i in load_spec(DEMO_SPEC).spec.rules.intents}
    assert "#{results.issue_refund.order_id}" in intents["refund"].answer
