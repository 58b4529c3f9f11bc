"""A spec's `a2a_agents` (remote A2A agents as tools `a2a.<name>`) is validated like every
section: a bad entry is refused with its file, line and field."""

from __future__ import annotations

import pytest

from steward.core.errors import SpecError
from steward.spec import load_spec_text

GOOD = """\
name: caller
model: scripted
tools: [a2a.desk]
a2a_agents:
  desk:
    card_url: https://b.example/a2a/desk/.well-known/agent-card.json
    token_env: DESK_TOKEN
"""


def _problem(text: str) -> tuple[int, str, str]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text, "caller.yaml")
    first = raised.value.problems[0]
    return first.line, first.field, first.message


def test_a_well_formed_entry_loads_with_safe_defaults() -> None:
    desk = load_spec_text(GOOD, "caller.yaml").spec.a2a_agents["desk"]
    assert desk.effect == "write" and not desk.idempotent  # never retried by default
    assert desk.token_env == "DESK_TOKEN" and desk.call_timeout_seconds is None


@pytest.mark.parametrize(
    ("before", "after", "line", "field", "message"),
    [
        ("https://b.example", "ftp://b.example", 6, "a2a_agents.desk.card_url", "pattern"),
        ("token_env: DESK_TOKEN", "token_env: desk-token", 7, "a2a_agents.desk.token_env",
         "pattern"),
        ("token_env: DESK_TOKEN", "token_env: X\n    timeout: 5", 8,
         "a2a_agents.desk.timeout", "unknown key 'timeout'"),
        ("tools: [a2a.desk]", "tools: [a2a.other]", 3, "tools[0]",
         "'a2a.other' names no entry of `a2a_agents`"),
        ("  desk:", "  Desk:", 5, "a2a_agents.Desk.[key]", "should match pattern"),
    ],
)  # fmt: skip
def test_a_bad_entry_names_its_line_and_field(
    before: str, after: str, line: int, field: str, message: str
) -> None:
    found = _problem(GOOD.replace(before, after, 1))
    assert found[0] == line and found[1] == field and message in found[2], found
