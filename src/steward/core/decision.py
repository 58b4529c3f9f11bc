"""A decision is a value: verdict, reasons, the rules that made it, and a risk score."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Verdict(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    DENY = "deny"
    TRANSFORM = "transform"


class Reason(msgspec.Struct, frozen=True):
    """A machine-readable code and a sentence for people."""

    code: str
    message: str


class Decision(msgspec.Struct, frozen=True):
    verdict: Verdict
    reasons: tuple[Reason, ...] = ()
    rule_ids: tuple[str, ...] = ()
    risk: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW or self.verdict is Verdict.TRANSFORM

    @property
    def primary_code(self) -> str:
        return self.reasons[0].code if self.reasons else self.verdict.value

    def explain(self) -> str:
        parts = [f"{self.verdict.value}"]
        for reason in self.reasons:
            parts.append(f"  [{reason.code}] {reason.message}")
        if self.rule_ids:
            parts.append(f"  rules: {', '.join(self.rule_ids)}")
        return "\n".join(parts)


def deny(code: str, message: str, *rule_ids: str, risk: float = 1.0) -> Decision:
    return Decision(Verdict.DENY, (Reason(code, message),), tuple(rule_ids), risk)


def allow(code: str, message: str, *rule_ids: str, risk: float = 0.0) -> Decision:
    return Decision(Verdict.ALLOW, (Reason(code, message),), tuple(rule_ids), risk)


def review(code: str, message: str, *rule_ids: str, risk: float = 0.5) -> Decision:
    return Decision(Verdict.REVIEW, (Reason(code, message),), tuple(rule_ids), risk)
