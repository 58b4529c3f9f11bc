"""What a run did, read from its journal, and the checks of a case's expectations on it.

Each check is a value: what was expected, whether it held, and what was seen instead. A
tool counts as *called* when the gate let it run (its call succeeded or failed at the
tool); a call that was proposed and denied, or that waits for a person, was not called.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema

from steward.core import events as ev
from steward.evals.suite import AnswerCheck, DecisionExpectation, Expectations, Matcher
from steward.store.runs import JournalEntry

_MISSING: Any = object()  # an argument the call did not pass


@dataclass(frozen=True, slots=True)
class Seen:
    """A gate decision on one call."""

    tool: str
    verdict: str
    rules: tuple[str, ...]  # rule ids and reason codes


@dataclass(slots=True)
class Observation:
    status: str
    output: str
    confidence: float | None
    reason_code: str
    seconds: float
    cost_usd: float = 0.0
    called: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    proposed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    decisions: list[Seen] = field(default_factory=list)


def observe(
    entries: list[JournalEntry],
    *,
    status: str,
    output: str,
    confidence: float | None,
    reason_code: str,
    seconds: float,
) -> Observation:
    seen = Observation(status, output, confidence, reason_code, seconds)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    ran: list[str] = []
    for entry in entries:
        event = entry.event
        if isinstance(event, ev.ToolCallProposed):
            call = (event.call.name, dict(event.call.arguments))
            calls[event.key] = call
            seen.proposed.append(call)
        elif isinstance(event, ev.GateDecided):
            decision = event.decision
            codes = tuple(r.code for r in decision.reasons)
            seen.decisions.append(
                Seen(event.tool, decision.verdict.value, decision.rule_ids + codes)
            )
        elif isinstance(event, ev.ToolSucceeded | ev.ToolFailed):
            if event.key not in ran:
                ran.append(event.key)
            if isinstance(event, ev.ToolSucceeded):
                seen.cost_usd += event.cost_usd
        elif isinstance(event, ev.ModelResponded):
            seen.cost_usd += event.response.usage.cost_usd
    seen.called = [calls[key] for key in ran if key in calls]
    return seen


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


def matches(matcher: Matcher, value: Any) -> bool:
    if matcher.present is not None:
        return (value is not _MISSING) is matcher.present
    if value is _MISSING:
        return False
    if "equals" in matcher.model_fields_set:
        return bool(value == matcher.equals)
    if matcher.contains is not None:
        return matcher.contains in (value if isinstance(value, str) else json.dumps(value))
    if matcher.regex is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        return re.search(matcher.regex, text) is not None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    low = -math.inf if matcher.min is None else matcher.min
    high = math.inf if matcher.max is None else matcher.max
    return low <= number <= high


def _rule_matches(expected: str, rules: tuple[str, ...]) -> bool:
    """`refund-over-500` matches the rule id `condition.refund-over-500`; a reason code or
    a full rule id matches itself."""
    return any(r == expected or r.endswith("." + expected) for r in rules)


def _decision_check(expected: DecisionExpectation, seen: Observation) -> Check:
    name = f"decision {expected.tool} {expected.verdict}" + (
        f" by {expected.rule}" if expected.rule else ""
    )
    for found in seen.decisions:
        if found.tool != expected.tool or found.verdict != expected.verdict:
            continue
        if expected.rule is None or _rule_matches(expected.rule, found.rules):
            return Check(name, True)
    shown = "; ".join(f"{d.tool} {d.verdict} ({', '.join(d.rules)})" for d in seen.decisions)
    return Check(name, False, f"decisions: {shown or 'none'}")


def _answer_checks(answer: AnswerCheck, output: str) -> list[Check]:
    checks: list[Check] = []
    shown = output if len(output) <= 160 else output[:157] + "..."
    if answer.equals is not None:
        checks.append(Check("answer equals", output.strip() == answer.equals.strip(), shown))
    for text in answer.contains:
        checks.append(Check(f"answer contains {text!r}", text.lower() in output.lower(), shown))
    for text in answer.not_contains:
        checks.append(
            Check(f"answer does not contain {text!r}", text.lower() not in output.lower(), shown)
        )
    for pattern in answer.regex:
        checks.append(
            Check(f"answer matches /{pattern}/", re.search(pattern, output) is not None, shown)
        )
    if answer.json_schema is not None:
        checks.append(_json_check(answer.json_schema, output))
    for number in answer.numbers:
        found = re.search(number.pattern, output)
        name = f"answer number {number.value:g} ± {number.tolerance:g}"
        if found is None:
            checks.append(Check(name, False, f"no number matching /{number.pattern}/"))
            continue
        text = (found.group(1) if found.groups() else found.group(0)).replace(",", "")
        try:
            value = float(text)
        except ValueError:
            checks.append(Check(name, False, f"{text!r} is not a number"))
            continue
        checks.append(
            Check(name, abs(value - number.value) <= number.tolerance, f"found {value:g}")
        )
    return checks


def _json_check(schema: dict[str, Any], output: str) -> Check:
    try:
        data = json.loads(output)
    except ValueError as exc:
        return Check("answer fits the JSON Schema", False, f"not JSON: {exc}")
    try:
        fastjsonschema.compile(schema, use_default=False)(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return Check("answer fits the JSON Schema", False, exc.message)
    return Check("answer fits the JSON Schema", True)


def check(expect: Expectations, seen: Observation) -> list[Check]:
    """Every deterministic check of a case (judged criteria are scored separately)."""
    checks: list[Check] = []
    if expect.status is not None:
        checks.append(
            Check(
                f"status {expect.status}",
                seen.status == expect.status,
                f"status {seen.status}" + (f" ({seen.reason_code})" if seen.reason_code else ""),
            )
        )
    for wanted in expect.calls:
        name = f"called {wanted.tool}" + (f" with {', '.join(wanted.args)}" if wanted.args else "")
        ok = any(
            tool == wanted.tool
            and all(matches(m, args.get(k, _MISSING)) for k, m in wanted.args.items())
            for tool, args in seen.called
        )
        shown = "; ".join(f"{t}({json.dumps(a, sort_keys=True)})" for t, a in seen.called)
        checks.append(Check(name, ok, f"called: {shown or 'nothing'}"))
    for tool in expect.not_called:
        ran = [t for t, _ in seen.called]
        checks.append(
            Check(f"did not call {tool}", tool not in ran, f"called: {', '.join(ran) or 'nothing'}")
        )
    for decision in expect.decisions:
        checks.append(_decision_check(decision, seen))
    if expect.answer is not None:
        checks.extend(_answer_checks(expect.answer, seen.output))
    if expect.max_cost_usd is not None:
        checks.append(
            Check(
                f"cost ≤ ${expect.max_cost_usd:g}",
                seen.cost_usd <= expect.max_cost_usd,
                f"${seen.cost_usd:.6f}",
            )
        )
    if expect.max_latency_ms is not None:
        ms = seen.seconds * 1000
        checks.append(
            Check(
                f"latency ≤ {expect.max_latency_ms:g} ms",
                ms <= expect.max_latency_ms,
                f"{ms:.1f} ms",
            )
        )
    return checks
