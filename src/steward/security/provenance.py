"""Where a proposed argument came from (DESIGN principle 10).

Works for any model, without its cooperation: an argument value is traced to the
conversation text it appears in. The user's words outrank a person's answer, then
configuration, then tool results; a value found nowhere was made up by the model. A
policy can then ask, say, `sources.to == "user"`: send only to a recipient the user named.

A value is credited to a source only when the source holds it whole (the README's
"Provenance" rules):
- texts are cut into tokens at whitespace, and punctuation at both ends of a token is
  dropped: "Ann." and "(Ann)" hold the token `ann`; "annual", "ann@example.com" and
  "2024-05-26" hold no `ann` and no `26`;
- an identifier written with spaces or dashes (a card, IBAN, phone number or SSN, as
  security/pii.py detects them) is one token: "DE89 3704 0044 ..." holds the IBAN, in any
  spacing, and no `3704`; a phone number matches in any format (compared in E.164);
- a string value of several words matches the same words in a row; strings shorter than
  MIN_STRING_LENGTH characters are never credited;
- numbers are compared as numbers: 1234567.89 matches "1234567.89", "1,234,567.89",
  "$1,234,567.890"; a token with a leading zero ("007") is an id, compared as a string;
- tool results are read decoded (their string and number values), never as JSON text;
- a redaction mask ("[CARD ****1111]", "[EMAIL]") holds nothing: the user's own words
  before redaction are passed as `said`;
- a list or object value is credited to a source only when every part of it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import msgspec

from steward.core.messages import Message, Source
from steward.security.pii import find_pii, find_pii_cached
from steward.security.scanners import MASK
from steward.tools.builtin import ASK_HUMAN

MIN_STRING_LENGTH = 3

_ROLE_SOURCE = {"user": Source.USER, "system": Source.CONFIG, "tool": Source.TOOL}
# A person's answer to the agent's question (the ask_human tool) is the person's word,
# not a tool's data: it ranks right after the user's own request.
_RANK = (Source.USER, Source.HUMAN, Source.CONFIG, Source.TOOL)

_SEPARATORS = re.compile(r"[\s().-]")
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _strip(chunk: str) -> str:
    """A chunk without punctuation at its ends ("(Ann)." -> "Ann"); a sign before a digit
    stays ("-50", "+14155550132")."""
    start, end = 0, len(chunk)
    while end > start and not chunk[end - 1].isalnum():
        end -= 1
    while start < end and not chunk[start].isalnum():
        signed = chunk[start] in "+-" and start + 1 < end and chunk[start + 1].isdigit()
        if signed:
            break
        start += 1
    return chunk[start:end]


def _number(token: str) -> Decimal | None:
    """The number a token spells, or None: not a number, or an id with a leading zero."""
    if not _NUMBER.fullmatch(token):
        return None
    digits = token.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] != ".":
        return None
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def _tokens(text: str, *, cache: bool = True) -> tuple[list[str], list[str]]:
    """The text's tokens, casefolded, each PII identifier one token in canonical form;
    and each identifier's digits as written, without separators ("4155550132"). The
    user's unmasked words are never cached (`cache=False`): they leave memory with the run."""
    parts: list[str] = []
    written: list[str] = []
    at = 0
    for match in find_pii_cached(text) if cache else find_pii(text):
        parts += text[at : match.start].split()
        parts.append(match.canonical)
        written.append(_SEPARATORS.sub("", text[match.start : match.end]))
        at = match.end
    parts += text[at:].split()
    tokens = [t for t in (_strip(p).casefold() for p in parts) if t]
    return tokens, [w.casefold() for w in written]


# what one message holds: token lines (one per text), identifiers as written, numbers
_Digest = tuple[tuple[str, ...], tuple[str, ...], frozenset[Decimal]]


def _digest_of(
    texts: Iterable[str], numbers: Iterable[int | float] = (), *, cache: bool
) -> _Digest:
    lines: list[str] = []
    written: list[str] = []
    found = {n for n in map(_value_number, numbers) if n is not None}
    for text in texts:
        tokens, as_written = _tokens(MASK.sub(" ", text), cache=cache)
        lines.append(" " + " ".join(tokens) + " ")
        written += as_written
        found.update(n for n in map(_number, (*tokens, *as_written)) if n is not None)
    return tuple(lines), tuple(written), frozenset(found)


@lru_cache(maxsize=4096)
def _message_digest(role: str, content: str) -> _Digest:
    """Cached: a run's conversation is traced again at every call and its messages do not
    change (uncached, tracing re-read the whole history at each call: O(steps²))."""
    if role == "tool":
        strings, numbers = _leaves(content)
        return _digest_of(strings, numbers, cache=True)
    return _digest_of((content,), cache=True)


@dataclass(slots=True)
class _Holdings:
    """What one source holds: its token sequences (one per text), the identifiers as
    written, and its numbers."""

    lines: list[str] = field(default_factory=list)  # " tok tok tok " per text
    written: set[str] = field(default_factory=set)
    numbers: set[Decimal] = field(default_factory=set)

    def add(self, digest: _Digest) -> None:
        lines, written, numbers = digest
        self.lines.extend(lines)
        self.written.update(written)
        self.numbers.update(numbers)

    def holds(self, needle: str | Decimal) -> bool:
        if isinstance(needle, Decimal):
            return needle in self.numbers
        return needle.strip() in self.written or any(needle in line for line in self.lines)


def _value_number(value: int | float) -> Decimal | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@lru_cache(maxsize=256)
def _leaves(content: str) -> tuple[tuple[str, ...], tuple[int | float, ...]]:
    """A tool message's string and number values, decoded; plain text when not JSON."""
    try:
        decoded = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return (content,), ()
    strings: list[str] = []
    numbers: list[int | float] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            numbers.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(decoded)
    return tuple(strings), tuple(numbers)


def _needle(value: str | int | float) -> Iterator[str | Decimal]:
    """What must be found for the value to be credited: a number, or a token sequence.
    Yields nothing for a value that can never be credited (too short, not finite)."""
    if isinstance(value, int | float):
        number = _value_number(value)
        if number is not None:
            yield number
        return
    tokens, _ = _tokens(value)
    if len(tokens) == 1:
        number = _number(tokens[0])
        if number is not None:
            yield number
            return
    joined = " ".join(tokens)
    if len(joined) >= MIN_STRING_LENGTH:
        yield " " + joined + " "


def _parts(value: Any) -> Iterator[str | int | float]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str | int | float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _parts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _parts(item)


@dataclass(frozen=True, slots=True)
class Said:
    """The user's own words as typed, read once per run (never cached across runs: they
    leave memory with the run). Build with `said_words`."""

    digest: _Digest = ((), (), frozenset())


def said_words(texts: Iterable[str]) -> Said:
    return Said(_digest_of(texts, cache=False))


def trace_sources(
    arguments: dict[str, Any],
    messages: Iterable[Message],
    *,
    said: Said | Iterable[str] = (),
) -> dict[str, Source]:
    """The source of each argument. `said` are the user's own words as typed, before
    redaction (the runner keeps them in memory for this only): an IBAN the user typed
    is then the user's, though the model and the journal only ever see it masked."""
    held: dict[Source, _Holdings] = {}
    for message in messages:
        source = _ROLE_SOURCE.get(message.role)
        if message.role == "tool" and message.name == ASK_HUMAN:
            source = Source.HUMAN
        if source is None:
            continue
        held.setdefault(source, _Holdings()).add(_message_digest(message.role, message.content))
    words = said if isinstance(said, Said) else said_words(said)
    if words.digest[0]:
        held.setdefault(Source.USER, _Holdings()).add(words.digest)
    found: dict[str, Source] = {}
    for name, value in arguments.items():
        parts = list(_parts(value))
        needles = [list(_needle(part)) for part in parts]
        found[name] = Source.MODEL
        if not parts or any(not n for n in needles):
            continue
        for source in _RANK:
            holder = held.get(source)
            if holder is not None and all(holder.holds(n[0]) for n in needles):
                found[name] = source
                break
    return found
