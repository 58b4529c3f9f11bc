"""Result scanners: PII redaction (validated detectors, security/pii.py) and injection
detection (phrase rules, then a learned model shipped in the package: security/injection/).

Scanners sit behind a small protocol (`Scanner`); stronger detectors plug in the same way.
A scanner never raises into the gate: the scan stage treats an error as a finding and
quarantines the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from steward.core.events import Finding
from steward.security.injection.model import Score as InjectionScore
from steward.security.injection.model import shipped_model
from steward.security.pii import CARD, EMAIL, IBAN, PHONE, SSN, find_pii


class TextSource(StrEnum):
    """Where a text the agent reads came from; the spec's `injection:` section says what a
    finding in each does (spec/models.py InjectionPolicy)."""

    TOOL_RESULTS = "tool_results"
    RETRIEVED_DOCUMENTS = "retrieved_documents"  # results of tools declared `retrieves=True`
    MCP_TOOL_DESCRIPTIONS = "mcp_tool_descriptions"  # descriptions an MCP server gives
    USER_INPUT = "user_input"  # the run's own input (scanned only when the spec says so)


class FindingAction(StrEnum):
    """What an injection finding does: `quarantine` replaces the string that held it;
    `review` sends every call proposed after it (in a later step of the run) to a person,
    the finding as the reason; `deny` denies those calls; `record` only records it."""

    QUARANTINE = "quarantine"
    REVIEW = "review"
    DENY = "deny"
    RECORD = "record"


@dataclass(frozen=True, slots=True)
class ScanResult:
    findings: tuple[str, ...] = ()
    value: Any = None
    changed: bool = False
    details: tuple[Finding, ...] = ()


class Scanner(Protocol):
    name: str

    def might_match(self, text: str) -> bool:
        """A cheap pre-check over all the strings of a value joined by newlines; False
        means scan() would find nothing, so it is skipped."""
        ...

    def scan(self, value: Any) -> ScanResult: ...


IDENTIFIERS = frozenset({CARD, SSN, IBAN})
ALL_PII = IDENTIFIERS | {EMAIL, PHONE}
_MASKS = {SSN: "[SSN]", IBAN: "[IBAN]", EMAIL: "[EMAIL]", PHONE: "[PHONE]"}
# What redact_text leaves in place of a value: no one's words (provenance skips it).
MASK = re.compile(r"\[(?:CARD \*{4}\d{4}|SSN|IBAN|EMAIL|PHONE)\]")


def redact_text(text: str, kinds: frozenset[str] = ALL_PII) -> tuple[str, tuple[str, ...]]:
    """Mask PII of the given kinds in text (validated detectors: security/pii.py);
    returns the masked text and the kinds found."""
    matches = find_pii(text, kinds)
    if not matches:
        return text, ()
    parts: list[str] = []
    at = 0
    for match in matches:
        mask = f"[CARD ****{match.canonical[-4:]}]" if match.kind == CARD else _MASKS[match.kind]
        parts += [text[at : match.start], mask]
        at = match.end
    parts.append(text[at:])
    return "".join(parts), tuple(dict.fromkeys(m.kind for m in matches))


def collect_strings(value: Any, into: list[str] | None = None) -> list[str]:
    """Every string inside a JSON-like value (keys excluded)."""
    out: list[str] = [] if into is None else into
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            collect_strings(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            collect_strings(item, out)
    return out


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    return map_strings(value, lambda _path, text: fn(text))


def map_strings(value: Any, fn: Callable[[str, str], str], path: str = "$") -> Any:
    """value with each string inside replaced by fn(its JSON path, the string)."""
    if isinstance(value, str):
        return fn(path, value)
    if isinstance(value, list | tuple):
        return [map_strings(v, fn, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: map_strings(v, fn, f"{path}.{k}") for k, v in value.items()}
    return value


# Necessary conditions, each one cheap search: an email holds "@"; a card, SSN or phone
# number holds at least 7 digits with few separators between them; an IBAN starts with two
# letters and two digits.
_SEVEN_DIGITS = re.compile(r"(?:\d[ ().+/-]{0,3}){6}\d")
_IBAN_START = re.compile(r"[A-Za-z]{2}\d{2}")


class PiiRedactor:
    name = "pii"

    def might_match(self, text: str) -> bool:
        return (
            "@" in text
            or _SEVEN_DIGITS.search(text) is not None
            or _IBAN_START.search(text) is not None
        )

    def scan(self, value: Any) -> ScanResult:
        kinds: list[str] = []

        def redact(text: str) -> str:
            masked, found = redact_text(text)
            kinds.extend(found)
            return masked

        masked = _map_strings(value, redact)
        if not kinds:  # e.g. a long digit run that fails the card checksum
            return ScanResult((), value, False)
        return ScanResult(tuple(dict.fromkeys(kinds)), masked, True)


_INJECTION = re.compile(
    r"(ignore (all |any )?(previous|prior|above) (instructions|rules)"
    r"|disregard (the |your )?(system|previous) (prompt|instructions)"
    r"|you are now (in )?(developer|admin|dan) mode"
    r"|\bsystem\s*(override|prompt)\s*:"
    r"|new instructions\s*:"
    r"|call the \w+ tool"
    r"|exfiltrate|send (all|every) (customer|user) (records|data))",
    re.IGNORECASE,
)


# Each alternative of _INJECTION contains one of these words: a cheap first look.
_INJECTION_WORDS = ("ignore", "disregard", "you are now", "system", "instructions", "call the",
                    "exfiltrate", "send all", "send every")  # fmt: skip


def phrase_match(text: str) -> re.Match[str] | None:
    """The phrase rules: a cheap first layer that catches the classic wordings."""
    lowered = text.lower()
    if not any(word in lowered for word in _INJECTION_WORDS):
        return None
    return _INJECTION.search(text)


class TextModel(Protocol):
    """A model that scores how much a text addresses an AI with instructions: the shipped
    one (security/injection/model.py) or one a user brings (security/injection/local.py)."""

    threshold: float

    def score(self, text: str) -> InjectionScore: ...


MIN_WORDS = 5  # a shorter string (a status, an id, a name) is left to the phrase rules


def _enough_words(text: str) -> bool:
    return len(text.split(None, MIN_WORDS - 1)) >= MIN_WORDS


QUARANTINED = "[QUARANTINED: untrusted content that contained instructions was removed]"


class InjectionDetector:
    """Flags text that addresses the model with instructions: the phrase rules first, then
    a learned model over every string of the value. Flagged content is quarantined: the
    model receives it wrapped as inert, untrusted data."""

    name = "injection"

    def __init__(self, model: Callable[[], TextModel] | None = shipped_model) -> None:
        self._model = model  # called on first use: the weights load lazily

    def might_match(self, text: str) -> bool:
        if self._model is None or not _enough_words(text):
            return phrase_match(text) is not None
        return True

    def find(self, path: str, text: str) -> Finding | None:
        """The finding in one string, or None."""
        match = phrase_match(text)
        if match is not None:
            return Finding("injection.suspected", "injection.rules", path, 1.0, *match.span())
        if self._model is None or not _enough_words(text):
            return None
        model = self._model()
        scored = model.score(text)
        if scored.score <= model.threshold:
            return None
        return Finding("injection.suspected", "injection.model", path, round(scored.score, 4),
                       scored.start, scored.end)  # fmt: skip

    def scan(self, value: Any) -> ScanResult:
        found: list[Finding] = []

        def check(path: str, text: str) -> str:
            finding = self.find(path, text)
            if finding is None:
                return text
            found.append(finding)
            return QUARANTINED

        cleaned = map_strings(value, check)
        if not found:
            return ScanResult((), value, False)
        return ScanResult(("injection.suspected",), cleaned, True, tuple(found))
