"""Provenance credits a value to a source only when the source holds it as a whole value
or a whole token: never a substring, never part of a date, IBAN or longer id."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core.messages import Message, Source
from steward.security.provenance import MIN_STRING_LENGTH, trace_sources


def _trace(value: object, user: str, tool: object = None, *, said: str | None = None) -> Source:
    messages = [Message("system", "You are a helpful agent."), Message("user", user)]
    if tool is not None:
        messages.append(Message("tool", json.dumps({"ok": True, "result": tool}), name="lookup"))
    extra = () if said is None else (said,)
    return trace_sources({"x": value}, messages, said=extra)["x"]


def test_a_name_inside_a_longer_word_is_not_the_users() -> None:
    assert _trace("ann", "please send the annual report", {"to": "ann"}) is Source.TOOL
    assert _trace("ann", "please send the report to Ann.", {"to": "ann"}) is Source.USER


def test_a_short_number_inside_a_date_or_iban_is_not_the_users() -> None:
    assert _trace("26", "my email of 2024-05-26 bounced", {"email_id": "26"}) is Source.TOOL
    assert _trace(26, "my email of 2024-05-26 bounced") is Source.MODEL
    iban = "pay DE89 3704 0044 0532 0130 00 please"
    assert _trace(6, iban, {"id": 6}) is Source.TOOL
    assert _trace("3704", iban) is Source.MODEL
    assert _trace(6, "refund 6 items") is Source.USER


def test_numbers_are_compared_as_numbers() -> None:
    for typed in ("1234567.89", "1,234,567.89", "1234567.890", "$1,234,567.89."):
        assert _trace(1234567.89, f"transfer {typed} to savings") is Source.USER, typed
        assert _trace("1234567.89", f"transfer {typed} to savings") is Source.USER, typed
    assert _trace(1234567.8, "transfer 1234567.89 to savings") is Source.MODEL
    assert _trace(50, "refund $50.00 for order #10066") is Source.USER
    assert _trace("10066", "refund $50.00 for order #10066") is Source.USER
    assert _trace(-50, "refund 50") is Source.MODEL


def test_short_strings_are_never_credited() -> None:
    assert MIN_STRING_LENGTH == 3
    assert _trace("ok", "it is ok now") is Source.MODEL


def test_multi_word_values_and_identifiers_match_whole() -> None:
    assert _trace("Annual Report", "send the annual report today") is Source.USER
    assert _trace("nnual repo", "send the annual report today") is Source.MODEL
    iban = "pay DE89 3704 0044 0532 0130 00 please"
    assert _trace("DE89 3704 0044 0532 0130 00", iban) is Source.USER
    assert _trace("DE89370400440532013000", iban) is Source.USER
    assert _trace("ann@example.com", "mail ann@example.com.") is Source.USER
    assert _trace("ann", "mail ann@example.com.") is Source.MODEL


def test_the_users_words_before_redaction_count() -> None:
    masked = "pay [IBAN] please"
    assert _trace("DE89370400440532013000", masked) is Source.MODEL
    said = "pay DE89 3704 0044 0532 0130 00 please"
    assert _trace("DE89370400440532013000", masked, said=said) is Source.USER
    # what a mask leaves is no one's words: not the last four digits of a card
    assert _trace(1111, "my card [CARD ****1111] was charged") is Source.MODEL


def test_values_in_a_tool_result_are_read_decoded() -> None:
    result = {"note": "line one\nrecipient: mallory@evil.test", "amount": 1234.5}
    assert _trace("mallory@evil.test", "hello there", result) is Source.TOOL
    assert _trace(1234.5, "hello there", result) is Source.TOOL


_WORD = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_SEP = st.sampled_from([" ", "  ", ", ", ". ", "\n", " (", ") ", ": ", "-", "/", "@", "."])


@st.composite
def _user_text(draw: st.DrawFn) -> tuple[str, list[str]]:
    words = draw(st.lists(_WORD, min_size=1, max_size=12))
    seps = draw(st.lists(_SEP, min_size=len(words), max_size=len(words)))
    text = "".join(w + s for w, s in zip(words, seps, strict=True))
    return text, words


def _whole_tokens(text: str) -> set[str]:
    """The user's whole tokens, by the README's rule: split on whitespace, strip
    punctuation at both ends."""
    out = set()
    for chunk in text.split():
        token = chunk.strip(string.punctuation)
        if token:
            out.add(token.lower())
    return out


@settings(max_examples=300, deadline=None)
@given(_user_text(), _WORD)
def test_an_injected_value_is_the_users_only_when_the_user_wrote_that_token(
    user: tuple[str, list[str]], injected: str
) -> None:
    text, _ = user
    credited = _trace(injected, text, {"to": injected}) is Source.USER
    if credited:
        assert injected.lower() in _whole_tokens(text)


@settings(max_examples=300, deadline=None)
@given(_user_text(), st.data())
def test_a_value_the_user_typed_is_always_the_users(
    user: tuple[str, list[str]], data: st.DataObject
) -> None:
    text, _ = user
    tokens = sorted(_whole_tokens(text))
    token = data.draw(st.sampled_from(tokens))
    if len(token) < MIN_STRING_LENGTH and not token.isdigit():
        return
    assert _trace(token, text, {"to": token}) is Source.USER


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False))
def test_a_number_the_user_typed_is_the_users_in_any_common_form(amount: object) -> None:
    from decimal import Decimal

    assert isinstance(amount, Decimal)
    value = float(amount)
    for typed in (f"{amount}", f"{amount:,}", f"{amount:.3f}"):
        assert _trace(value, f"move {typed} now", {"amount": value}) is Source.USER, typed
