"""Scan a tool's result before the model sees it: injection quarantine, PII redaction
(unless the agent may see PII), and the record limit of data_access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steward.core.decision import Decision, Reason, Verdict
from steward.security.scanners import InjectionDetector, PiiRedactor, Scanner, collect_strings

DEFAULT_SCANNERS: tuple[Scanner, ...] = (InjectionDetector(), PiiRedactor())


def scan_result(
    result: Any,
    scanners: Sequence[Scanner],
    *,
    allow_pii: bool,
    max_records: int,
) -> tuple[Any, Decision | None, tuple[str, ...]]:
    """Returns (result as the model may see it, a transform decision or None, findings)."""
    findings: list[str] = []
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
            reasons.append(Reason(f"scan.{scanner.name}", ", ".join(scanned.findings)))
            value = scanned.value
    if not reasons:
        return result, None, ()
    risk = 0.8 if any(f.startswith("injection") for f in findings) else 0.3
    rule_ids = tuple(f"scan.{f}" for f in dict.fromkeys(findings))
    return (
        value,
        Decision(Verdict.TRANSFORM, tuple(reasons), rule_ids, risk),
        tuple(dict.fromkeys(findings)),
    )
