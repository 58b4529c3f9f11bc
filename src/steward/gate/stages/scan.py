"""Scan what the agent reads before the model sees it: injection findings (what each does
is the spec's `injection:` section, per source), PII redaction (unless the agent may see
PII), and the record limit of data_access.

A finding's action (security/scanners.py FindingAction): `quarantine` replaces the string
that held it; `record` leaves it and records the finding; `review` and `deny` leave it too,
and the finding stands over every call proposed in a later step of the run (FindingsStage).
A scanner that fails quarantines the whole value, whatever the action: fail closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from steward.core.decision import Decision, Reason, Verdict, deny, review
from steward.core.events import Finding, ResultScanned
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome
from steward.gate.scope import RunScope, StandingFinding
from steward.security.scanners import (
    FindingAction,
    InjectionDetector,
    PiiRedactor,
    Scanner,
    ScanResult,
    TextSource,
    collect_strings,
)

DEFAULT_SCANNERS: tuple[Scanner, ...] = (InjectionDetector(), PiiRedactor())
INJECTION = "injection"


class Scanned(NamedTuple):
    value: Any  # the result as the model may see it
    decision: Decision | None  # the scan's decision, or None when it found nothing
    findings: tuple[str, ...]
    details: tuple[Finding, ...]  # detector, score, path and span of each finding


def _is_injection(scanned: ScanResult) -> bool:
    return bool(scanned.findings) and all(f.startswith(INJECTION) for f in scanned.findings)


def scan_result(
    result: Any,
    scanners: Sequence[Scanner],
    *,
    allow_pii: bool,
    max_records: int,
    injection: FindingAction = FindingAction.QUARANTINE,
) -> Scanned:
    """The value as the model may see it. Injection findings are acted on as `injection`
    says; everything else a scanner changes (PII, a failure) is always applied."""
    findings: list[str] = []
    details: list[Finding] = []
    reasons: list[Reason] = []
    value = result
    changed = False
    if isinstance(value, list) and len(value) > max_records:
        findings.append("data_access.max_records")
        reasons.append(
            Reason(
                "data_access.max_records", f"result cut from {len(value)} to {max_records} records"
            )
        )
        value, changed = value[:max_records], True
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
            value, changed = "[QUARANTINED: the result could not be scanned]", True
            continue
        if not scanned.changed:
            continue
        findings.extend(scanned.findings)
        details.extend(scanned.details)
        applied = injection is FindingAction.QUARANTINE or not _is_injection(scanned)
        verb = "" if applied else f" ({injection.value})"
        reasons.append(Reason(f"scan.{scanner.name}", ", ".join(scanned.findings) + verb))
        if applied:
            value, changed = scanned.value, True
    if not reasons:
        return Scanned(result, None, (), ())
    risk = 0.8 if any(f.startswith(INJECTION) for f in findings) else 0.3
    rule_ids = tuple(f"scan.{f}" for f in dict.fromkeys(findings))
    verdict = Verdict.TRANSFORM if changed else Verdict.ALLOW
    decision = Decision(verdict, tuple(reasons), rule_ids, risk)
    return Scanned(value if changed else result, decision, tuple(dict.fromkeys(findings)),
                   tuple(details))  # fmt: skip


def injection_detector(scanners: Sequence[Scanner]) -> Scanner | None:
    """The gate's injection scanner (named `injection`), to scan texts other than results."""
    return next((s for s in scanners if s.name == INJECTION), None)


def scan_text(
    scope: RunScope,
    scanners: Sequence[Scanner],
    action: FindingAction | None,
    *,
    source: TextSource,
    key: str,
    label: str,
    text: str,
    step: int = -1,
) -> str:
    """Scan one text the agent reads that is not a tool's result (the run's input, an MCP
    tool's description) for injection, once per key: a finding is recorded as a
    ResultScanned event and acted on as `action` says. Returns the text as the model may
    see it. A scanner that fails counts as a finding: the text is quarantined, or its
    action (review, deny) stands."""
    if action is None or key in scope.recorded_findings().scanned:
        return text
    detector = injection_detector(scanners)
    if detector is None:
        return text
    scanned = scan_result(text, (detector,), allow_pii=True, max_records=1, injection=action)
    if scanned.decision is None:
        return text
    details = scanned.details
    if not details:  # the scanner failed: a finding with no span, so the action applies
        details = (Finding("injection.scan_failed", INJECTION, "$", 1.0, 0, len(text)),)
    scope.emit(
        ResultScanned(key, label, scanned.decision, scanned.findings, details,
                      source=source.value, action=action.value, step=step)
    )  # fmt: skip
    shown: str = scanned.value
    return shown


def _describe(found: StandingFinding) -> str:
    where = "the run's input" if found.key.endswith(":input") else f"the result of {found.tool}"
    if found.source == TextSource.MCP_TOOL_DESCRIPTIONS.value:
        where = f"the description of {found.tool}"
    f = found.finding
    return (
        f"{where} ({found.source}) held instructions for the model: {f.kind} by {f.detector}, "
        f"score {f.score:.2f}, at {f.path}[{f.start}:{f.end}]"
    )


class FindingsStage:
    """The injection findings that stand over this call (action review or deny, found in
    an earlier step of the run, or in its input): deny it, or send it to a person with
    the finding as the reason. A question for a person (`ask_human`) goes to one anyway.
    After policy and autonomy: an autonomous agent's review still holds here."""

    name = "findings"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        if cx.decision is None or (cx.tool is not None and cx.tool.asks_human):
            return await proceed(cx)
        standing = [s for s in cx.scope.recorded_findings().standing if s.step < cx.step]
        if not standing:
            return await proceed(cx)
        denied = [s for s in standing if s.action == FindingAction.DENY.value]
        rule_ids = tuple(dict.fromkeys(f"findings.{s.source}.{s.action}" for s in standing))
        if denied:
            message = _describe(denied[0]) + "; the calls that follow it are denied"
            return cx.stop(self.name, deny("injection.finding", message, *rule_ids))
        message = _describe(standing[0]) + "; the calls that follow it need a person"
        decided = review("injection.finding", message, *rule_ids, risk=0.8)
        if cx.decision.verdict is Verdict.REVIEW:  # already for review: the finding comes first
            decided = Decision(
                Verdict.REVIEW,
                decided.reasons + cx.decision.reasons,
                decided.rule_ids + cx.decision.rule_ids,
                max(decided.risk, cx.decision.risk),
            )
        cx.decided(self.name, decided)
        return await proceed(cx)
