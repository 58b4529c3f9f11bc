"""Result scanners: PII redaction (validated detectors, security/pii.py) and a
prompt-injection baseline.

The injection detector is a deliberately simple, pattern-based baseline behind a small protocol
(`Scanner`); stronger detectors plug in the same way. A scanner never raises into the
gate: the scan stage treats an error as a finding and quarantines the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from steward.security.pii import CARD, EMAIL, IBAN, PHONE, SSN, find_pii


@dataclass(frozen=True, slots=True)
class ScanResult:
    findings: tuple[str, ...] = ()
    value: Any = None
    changed: bool = False


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
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list | tuple):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
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


class InjectionDetector:
    """Flags text that addresses the model with instructions. Flagged content is
    quarantined: the model receives it wrapped as inert, untrusted data."""

    name = "injection"

    def might_match(self, text: str) -> bool:
        lowered = text.lower()
        if not any(word in lowered for word in _INJECTION_WORDS):
            return False
        return _INJECTION.search(text) is not None

    def scan(self, value: Any) -> ScanResult:
        hits = 0

        def check(text: str) -> str:
            nonlocal hits
            if _INJECTION.search(text):
                hits += 1
                return "[QUARANTINED: untrusted content that contained instructions was removed]"
            return text

        cleaned = _map_strings(value, check)
        if not hits:
            return ScanResult((), value, False)
        return ScanResult(("injection.suspected",), cleaned, True)
