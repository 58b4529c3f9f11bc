"""Baseline result scanners: PII redaction and prompt-injection detection.

These are deliberately simple, pattern-based baselines behind a small protocol
(`Scanner`); stronger detectors plug in the same way. A scanner never raises into the
gate: the scan stage treats an error as a finding and quarantines the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


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


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        n = int(char)
        if index % 2 == parity:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_PHONE = re.compile(r"(?<!\w)(?:\+?\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")


IDENTIFIERS = frozenset({"pii.card_number", "pii.ssn", "pii.iban"})
ALL_PII = IDENTIFIERS | {"pii.email", "pii.phone"}


def redact_text(text: str, kinds: frozenset[str] = ALL_PII) -> tuple[str, tuple[str, ...]]:
    """Mask PII of the given kinds in text; returns the masked text and the kinds found."""
    found: list[str] = []

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            found.append("pii.card_number")
            return f"[CARD ****{digits[-4:]}]"
        return match.group(0)

    if "pii.card_number" in kinds:
        text = _CARD.sub(card, text)
    for pattern, kind, mask in (
        (_SSN, "pii.ssn", "[SSN]"),
        (_IBAN, "pii.iban", "[IBAN]"),
        (_EMAIL, "pii.email", "[EMAIL]"),
        (_PHONE, "pii.phone", "[PHONE]"),
    ):
        if kind not in kinds:
            continue
        text, count = pattern.subn(mask, text)
        if count:
            found.append(kind)
    return text, tuple(dict.fromkeys(found))


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


# Necessary conditions, each one cheap search: a card, SSN or phone number is a run of at
# least 10 digits and separators (555-123-4567 is 12; a date, 2025-07-05, is 10 but holds
# only 8 digits, so it passes this check and fails the patterns); an IBAN starts with two
# letters and two digits.
_DIGIT_RUN = re.compile(r"[0-9(][0-9 .()+-]{9,}")
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")


class PiiRedactor:
    name = "pii"

    def might_match(self, text: str) -> bool:
        # Cheap necessary conditions first; the full patterns run only past them.
        if "@" in text and _EMAIL.search(text):
            return True
        if _DIGIT_RUN.search(text) and (
            _CARD.search(text) or _SSN.search(text) or _PHONE.search(text)
        ):
            return True
        return _IBAN_START.search(text) is not None and _IBAN.search(text) is not None

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
