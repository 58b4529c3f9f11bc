"""Scan a tool's result before the model sees it: injection quarantine, PII redaction
(unless the agent may see PII), and the record limit of data_access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from steward.core.decision import Decision, Reason, Verdict
from steward.core.events import Finding
from steward.security.scanners import InjectionDetector, PiiRedactor, Scanner, collect_strings

DEFAULT_SCANNERS: tuple[Scanner, ...] = (InjectionDetector(), PiiRedactor())


class Scanned(NamedTuple):
    value: Any  # the result as the model may see it
    decision: Decision | None  # a transform decision, or None when nothing changed
    findings: tuple[str, ...]
    details: tuple[Finding, ...]  # detector, score, path and span of each finding


def scan_result(
    result: Any,
    scanners: Sequence[Scanner],
    *,
    allow_pii: bool,
    max_records: int,
) -> Scanned:
    findings: list[str] = []
    details: list[Finding] = []
    reasons: list[Reason] = []
    value = result
    if isinstance(value, list) and len(value) > max_records:
        findings.append("data_access.max_records")
        reasons.append(
            Reason(
                "data_access.max_records", f"result cut from {len(value)} to {max_records} records"
            )
        )
        value = value[:max_records]
    # The scanners' cheap pre-checks read the decoded string values, one per line: never
    # the value's JSON encoding, where a line break is the two characters `\n` and a
    # finding at the start of a line would follow the letter "n".
    joined = "\n".join(collect_strings(value))
    for scanner in scanners:
        if scanner.name == "pii" and allow_pii:
            continue
        try:
            if not scanner.might_match(joined):
                continue
            scanned = scanner.scan(value)
        except Exception as exc:  # a broken scanner quarantines rather than passes
            findings.append(f"scanner.error.{scanner.name}")
            reasons.append(Reason("scan.error", f"scanner {scanner.name} failed: {exc}"))
            value = "[QUARANTINED: the result could not be scanned]"
            continue
        if scanned.changed:
            findings.extend(scanned.findings)
            details.extend(scanned.details)
            reasons.append(Reason(f"scan.{scanner.name}", ", ".join(scanned.findings)))
            value = scanned.value
    if not reasons:
        return Scanned(result, None, (), ())
    risk = 0.8 if any(f.startswith("injection") for f in findings) else 0.3
    rule_ids = tuple(f"scan.{f}" for f in dict.fromkeys(findings))
    decision = Decision(Verdict.TRANSFORM, tuple(reasons), rule_ids, risk)
    return Scanned(value, decision, tuple(dict.fromkeys(findings)), tuple(details))
