"""Compile an agent spec into a Policy and evaluate proposed calls against it.

Precedence, strictest first, so the answer never depends on rule order:
unlisted tool → deny; `forbidden` tier → deny; an argument holding NaN or ±Infinity →
deny (no comparison with such a number means anything); data class not allowed → deny
(every such class is a reason, in DataClass order, never in hash order);
record limit exceeded → deny; any matching `forbidden` condition → deny; any matching
`requires_human_review` condition → review; any matching `autonomous` condition →
allow; otherwise the tool's tier. A condition that errors denies (fail closed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from steward.core.decision import Decision, Reason, Verdict, deny
from steward.core.messages import ToolCall
from steward.core.values import json_problem
from steward.spec.models import AgentSpec, RateLimit, Tier
from steward.tools.base import DataClass, Effect, Tool
from steward.tools.builtin import BUILTINS


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Inputs the policy may consult besides the call. All optional; absent counters are
    simply not checked here (the gate's rate and budget stages pass them in)."""

    sources: Mapping[str, str] = field(default_factory=dict)
    rate_used: int | None = None
    run_spent_usd: float | None = None
    day_spent_usd: float | None = None
    estimate_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class _Condition:
    id: str
    program: Any  # cel.Program
    then: Tier
    reason: str
    uses: frozenset[str] = frozenset({"args", "tool", "agent", "sources"})


@dataclass(frozen=True, slots=True)
class _ToolRule:
    name: str
    tier: Tier
    data_classes: tuple[DataClass, ...]  # in DataClass order: reasons never follow hash order
    effect: Effect
    limit_arg: str | None
    conditions: tuple[_Condition, ...]
    base: Decision


_DATA_FLAGS = {
    DataClass.PII: "allow_pii",
    DataClass.FINANCIAL: "allow_financial",
    DataClass.INTERNAL: "allow_internal_docs",
}


class Policy:
    """The compiled, immutable policy of one agent version."""

    def __init__(self, spec: AgentSpec, version: str, rules: dict[str, _ToolRule]) -> None:
        self.agent = spec.name
        self.version = version
        self.spec = spec
        self._rules = rules
        self._rate_limits: dict[str, RateLimit] = dict(spec.rate_limits)
        self._max_records = spec.data_access.max_records_per_query
        self._costs = spec.cost_controls

    def tier_of(self, tool: str) -> Tier | None:
        rule = self._rules.get(tool)
        return rule.tier if rule is not None else None

    def rate_limit(self, tool: str) -> RateLimit | None:
        return self._rate_limits.get(tool)

    def standing(self, tool: str) -> tuple[Decision, bool]:
        """What the policy says of `tool` before any arguments are seen (what a tool
        listing may show): unlisted, forbidden and data-class denials as `decide_call`
        words them, else the tier's decision; and whether argument conditions can still
        change that decision for a given call."""
        rule = self._rules.get(tool)
        if rule is None:
            return self.decide_call(ToolCall("", tool, {}), PolicyContext()), False
        if rule.tier is Tier.FORBIDDEN:
            return rule.base, False
        refused = [
            d for d in rule.data_classes if not getattr(self.spec.data_access, _DATA_FLAGS[d])
        ]
        if refused:
            return self.decide_call(ToolCall("", tool, {}), PolicyContext()), False
        return rule.base, bool(rule.conditions) or rule.limit_arg is not None

    # -- the decisions -----------------------------------------------------------------

    def evaluate(self, call: ToolCall, context: PolicyContext | None = None) -> Decision:
        """The whole policy for one call. Never raises: any error is a deny."""
        ctx = context or PolicyContext()
        try:
            decision = self.decide_call(call, ctx)
            if not decision.allowed and decision.verdict is not Verdict.REVIEW:
                return decision
            if ctx.rate_used is not None:
                limited = self.decide_rate(call.name, ctx.rate_used)
                if limited is not None:
                    return limited
            if ctx.run_spent_usd is not None or ctx.day_spent_usd is not None:
                budget = self.decide_budget(
                    ctx.run_spent_usd or 0.0, ctx.day_spent_usd or 0.0, ctx.estimate_usd
                )
                if budget is not None:
                    return budget
            return decision
        except Exception as exc:
            return deny("policy.error", f"policy evaluation failed: {type(exc).__name__}: {exc}")

    def decide_call(self, call: ToolCall, context: PolicyContext) -> Decision:
        rule = self._rules.get(call.name)
        if rule is None:
            return deny(
                "tool.unlisted",
                f"'{call.name}' is not in agent '{self.agent}' tools; unlisted tools are forbidden",
                "default.unlisted",
            )
        if rule.tier is Tier.FORBIDDEN:
            return rule.base
        not_a_number = json_problem(call.arguments, max_depth=None)
        if not_a_number is not None:
            return deny("args.not_finite", f"'{call.name}' arguments: {not_a_number}")
        refused = [
            d for d in rule.data_classes if not getattr(self.spec.data_access, _DATA_FLAGS[d])
        ]
        if refused:
            return Decision(
                Verdict.DENY,
                tuple(
                    Reason(
                        f"data_access.{d.value}",
                        f"'{call.name}' touches {d.value} data, which this agent may not access",
                    )
                    for d in refused
                ),
                tuple(f"data_access.{_DATA_FLAGS[d]}" for d in refused),
                1.0,
            )
        if rule.limit_arg is not None:
            requested = call.arguments.get(rule.limit_arg)
            if isinstance(requested, int | float) and requested > self._max_records:
                return deny(
                    "data_access.max_records",
                    f"{rule.limit_arg}={requested} exceeds max_records_per_query={self._max_records}",
                    "data_access.max_records_per_query",
                )
        if not rule.conditions:
            return rule.base
        return self._apply_conditions(rule, call, context)

    def _apply_conditions(
        self, rule: _ToolRule, call: ToolCall, context: PolicyContext
    ) -> Decision:
        everything = {
            "args": call.arguments,
            "tool": call.name,
            "agent": self.agent,
            "sources": context.sources,
        }
        matched: dict[Tier, list[_Condition]] = {}
        for condition in rule.conditions:
            # Handing CEL only the variables a condition names halves its cost.
            activation = {name: everything[name] for name in condition.uses}
            try:
                result = condition.program.execute(activation)
            except Exception as exc:
                return deny(
                    "policy.condition_error",
                    f"condition '{condition.id}' could not be evaluated: {exc}",
                    f"condition.{condition.id}",
                )
            if result is True:
                matched.setdefault(condition.then, []).append(condition)
            elif result is not False:
                return deny(
                    "policy.condition_error",
                    f"condition '{condition.id}' gave {result!r}, not a boolean",
                    f"condition.{condition.id}",
                )
        for tier in (Tier.FORBIDDEN, Tier.REQUIRES_HUMAN_REVIEW, Tier.AUTONOMOUS):
            hits = matched.get(tier)
            if hits:
                return Decision(
                    _VERDICTS[tier],
                    tuple(Reason(f"condition.{c.id}", c.reason) for c in hits),
                    tuple(f"condition.{c.id}" for c in hits),
                    _RISK[tier],
                )
        return rule.base

    def decide_rate(self, tool: str, used: int) -> Decision | None:
        limit = self._rate_limits.get(tool)
        if limit is None or used < limit.count:
            return None
        return deny(
            "rate_limit.exceeded",
            f"'{tool}' used {used} times in {limit.period_seconds:g}s; limit is {limit.count}",
            f"rate_limits.{tool}",
            risk=0.5,
        )

    def decide_budget(self, run_spent: float, day_spent: float, estimate: float) -> Decision | None:
        values = (run_spent, day_spent, estimate)
        if any(not math.isfinite(v) or v < 0 for v in values):
            return deny("budget.invalid", f"budget figures are not valid numbers: {values}")
        per_run = self._costs.max_cost_per_run_usd
        if per_run is not None and run_spent + estimate > per_run:
            return deny(
                "budget.run_exhausted",
                f"run spend ${run_spent + estimate:.4f} would exceed max_cost_per_run_usd ${per_run:.2f}",
                "cost_controls.max_cost_per_run_usd",
            )
        daily = self._costs.max_daily_spend_usd
        if daily is not None and day_spent + estimate > daily:
            return deny(
                "budget.daily_exhausted",
                f"daily spend ${day_spent + estimate:.4f} would exceed max_daily_spend_usd ${daily:.2f}",
                "cost_controls.max_daily_spend_usd",
            )
        return None


_VERDICTS = {
    Tier.AUTONOMOUS: Verdict.ALLOW,
    Tier.REQUIRES_HUMAN_REVIEW: Verdict.REVIEW,
    Tier.FORBIDDEN: Verdict.DENY,
}
_RISK = {Tier.AUTONOMOUS: 0.1, Tier.REQUIRES_HUMAN_REVIEW: 0.5, Tier.FORBIDDEN: 1.0}


def _base_decision(name: str, tier: Tier, explicit: bool) -> Decision:
    if tier is Tier.FORBIDDEN:
        why = (
            "listed as forbidden" if explicit else "listed in no decision tier (default: forbidden)"
        )
        rule_id = f"decision_authority.forbidden.{name}" if explicit else "default.untiered"
        return deny("tool.forbidden", f"'{name}' is {why}", rule_id)
    if tier is Tier.REQUIRES_HUMAN_REVIEW and not explicit and name in BUILTINS:
        return Decision(
            Verdict.REVIEW,
            (Reason("tier.asks_human", f"'{name}' is answered by a person"),),
            (f"builtin.{name}",),
            _RISK[tier],
        )
    return Decision(
        _VERDICTS[tier],
        (Reason(f"tier.{tier.value}", f"'{name}' is {tier.value}"),),
        (f"decision_authority.{tier.value}.{name}",),
        _RISK[tier],
    )


_VARIABLES = frozenset({"args", "tool", "agent", "sources"})


def _compile_condition(cid: str, when: str, then: Tier, reason: str) -> _Condition:
    program = cel.compile(when)
    return _Condition(cid, program, then, reason, frozenset(program.variables()) & _VARIABLES)


def compile_policy(
    spec: AgentSpec, version: str, tools: Mapping[str, Tool] | None = None
) -> Policy:
    """Compile once per spec version. `tools` supplies data classes and effects; a listed
    tool without metadata is treated as a write touching every data class (fail closed)."""
    rules: dict[str, _ToolRule] = {}
    for name in spec.tools:
        explicit = spec.decision_authority.tier_of(name)
        meta = (tools or {}).get(name) or BUILTINS.get(name)
        # A question for a person needs no tier: listing `ask_human` enables it.
        asks = meta is not None and meta.asks_human
        tier = explicit or (Tier.REQUIRES_HUMAN_REVIEW if asks else Tier.FORBIDDEN)
        touched = meta.data_classes if meta is not None else frozenset(DataClass)
        data_classes = tuple(d for d in DataClass if d in touched)
        conditions = tuple(
            _compile_condition(c.id, c.when, c.then, c.reason)
            for c in spec.conditions
            if c.tool == name
        )
        rules[name] = _ToolRule(
            name=name,
            tier=tier,
            data_classes=data_classes,
            effect=meta.effect if meta is not None else Effect.WRITE,
            limit_arg=meta.limit_arg if meta is not None else None,
            conditions=conditions,
            base=_base_decision(name, tier, explicit is not None),
        )
    # Tools named only under `forbidden` (not in `tools`) are denied by the unlisted rule,
    # but we want the more specific reason, so they get a forbidden rule too.
    for name in spec.decision_authority.forbidden:
        if name not in rules:
            rules[name] = _ToolRule(
                name,
                Tier.FORBIDDEN,
                (),
                Effect.WRITE,
                None,
                (),
                _base_decision(name, Tier.FORBIDDEN, True),
            )
    return Policy(spec, version, rules)
