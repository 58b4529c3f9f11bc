"""Typed models of an evaluation suite: a YAML file with a top-level `cases:` list.

Each case gives the agent an input and says what must hold afterwards: the run's final
status, the tools it called or did not call (with argument matchers), the gate's
decisions (e.g. `issue_refund` denied by rule `refund-over-500`), checks on the answer
(contains, regex, equals, JSON Schema, a number within a tolerance), cost and latency
ceilings, and criteria an LLM judge scores. A case is `required` (it must pass) or scored
(it counts towards the suite's pass rate, compared with a baseline within its noise).

Evaluations never touch production systems. The suite says which tools a case's calls
reach: `systems: sandbox` builds the suite's `toolset` over a fresh, throw-away copy of
the systems for each evaluation; `systems: fixtures` answers each call from the results
recorded in the case (`fixtures:`), and a call with no recorded result fails.
Unknown keys are errors, as in agent specs; the loader locates every problem by line.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import fastjsonschema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from steward.spec.models import ModelRef

CASE_ID = r"^[A-Za-z0-9][\w.\-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"regular expression does not compile: {exc}") from None
    return value


class Systems(StrEnum):
    SANDBOX = "sandbox"  # a fresh copy of the systems per evaluation, built by `toolset`
    FIXTURES = "fixtures"  # each call answered by the case's recorded result


class Matcher(_Strict):
    """How one argument (or the answer) must look. Exactly one of these is given; a bare
    value in the YAML means `equals`."""

    equals: Any = None
    contains: str | None = None
    regex: str | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    present: bool | None = None

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        return value if value is None else _regex(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Matcher:
        given = [k for k in ("contains", "regex", "present") if getattr(self, k) is not None]
        given += ["equals"] if "equals" in self.model_fields_set else []
        given += ["min/max"] if self.min is not None or self.max is not None else []
        if len(given) != 1:
            raise ValueError(
                "give exactly one of equals, contains, regex, min/max, present; "
                f"got {', '.join(given) or 'none'}"
            )
        return self


def _matcher(value: Any) -> Any:
    """A plain value is shorthand for `{equals: value}`."""
    keys = {"equals", "contains", "regex", "min", "max", "present"}
    if isinstance(value, dict) and value and set(value) <= keys:
        return value
    return {"equals": value}


ArgMatcher = Annotated[Matcher, BeforeValidator(_matcher)]


class ToolExpectation(_Strict):
    """A tool the run executed, with arguments that match (others are not checked)."""

    tool: str = Field(min_length=1)
    args: dict[str, ArgMatcher] = {}


def _tool_shorthand(value: Any) -> Any:
    return {"tool": value} if isinstance(value, str) else value


class DecisionExpectation(_Strict):
    """A gate decision on a call of `tool`: its verdict and, optionally, the rule that
    made it (a condition id such as `refund-over-500`, a reason code such as
    `data_access.financial`, or a full rule id)."""

    tool: str = Field(min_length=1)
    verdict: str = Field(pattern="^(allow|review|deny|transform)$")
    rule: str | None = None


class NumberCheck(_Strict):
    """A number in the answer: the first match of `pattern` (its first group, or the
    whole match), within `tolerance` of `value`."""

    pattern: str = r"-?\d[\d,]*(?:\.\d+)?"
    value: float = Field(allow_inf_nan=False)
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _regex(value)


class AnswerCheck(_Strict):
    """Checks on the run's final answer; every one given must hold."""

    equals: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    numbers: tuple[NumberCheck, ...] = ()

    @field_validator("contains", "not_contains", "regex", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regex")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_regex(v) for v in value)

    @field_validator("json_schema")
    @classmethod
    def _schema_compiles(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                fastjsonschema.compile(value)
            except fastjsonschema.JsonSchemaDefinitionException as exc:
                raise ValueError(f"not a valid JSON Schema: {exc}") from None
        return value


def _criterion_shorthand(value: Any) -> Any:
    return {"criterion": value} if isinstance(value, str) else value


class Criterion(_Strict):
    """A quality the judge scores on the suite's scale (the judge's rubric applies)."""

    criterion: str = Field(min_length=1)
    threshold: float | None = Field(default=None, allow_inf_nan=False)


class Expectations(_Strict):
    status: str | None = Field(
        default=None, pattern="^(succeeded|failed|escalated|waiting|cancelled)$"
    )
    calls: tuple[Annotated[ToolExpectation, BeforeValidator(_tool_shorthand)], ...] = ()
    not_called: tuple[str, ...] = ()
    decisions: tuple[DecisionExpectation, ...] = ()
    answer: AnswerCheck | None = None
    max_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_latency_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    judged: tuple[Annotated[Criterion, BeforeValidator(_criterion_shorthand)], ...] = ()


class Case(_Strict):
    id: str = Field(pattern=CASE_ID)
    input: str = Field(min_length=1)
    tags: tuple[str, ...] = ()
    required: bool = True
    fixtures: dict[str, Any] = {}  # tool name → its recorded result (systems: fixtures)
    expect: Expectations


class JudgeConfig(_Strict):
    """The LLM judge: any model steward's providers speak, asked `runs` times per
    criterion. A criterion passes only when the one-sided 95% lower confidence bound of
    the mean score clears `threshold`, fails when the upper bound is below it, and is
    `uncertain` otherwise."""

    model: ModelRef
    rubric: str = ""  # empty: the agent's prompt file's evaluation_rubric
    scale_min: float = Field(default=1.0, allow_inf_nan=False)
    scale_max: float = Field(default=5.0, allow_inf_nan=False)
    threshold: float = Field(default=4.0, allow_inf_nan=False)
    runs: int = Field(default=5, ge=2, le=50, strict=True)

    @field_validator("model", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _scale(self) -> JudgeConfig:
        if not self.scale_min < self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        if not self.scale_min <= self.threshold <= self.scale_max:
            raise ValueError("threshold must lie on the scale")
        return self


class Suite(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    description: str = ""
    agent: str | None = None  # the agent this suite evaluates; checked when given
    systems: Systems
    toolset: str | None = Field(default=None, pattern=r"^[\w.]+:[\w]+$")
    concurrency: int = Field(default=8, ge=1, le=256, strict=True)
    judge: JudgeConfig | None = None
    cases: tuple[Case, ...]


Loc = tuple[str | int, ...]


def check_suite(suite: Suite) -> list[tuple[Loc, str]]:
    """Cross-field checks, each with the path of the offending value."""
    problems: list[tuple[Loc, str]] = []
    if not suite.cases:
        problems.append((("cases",), "a suite needs at least one case"))
    if suite.systems is Systems.SANDBOX and suite.toolset is None:
        problems.append((("systems",), "systems: sandbox needs a `toolset` (module:function)"))
    seen: dict[str, int] = {}
    for index, case in enumerate(suite.cases):
        if case.id in seen:
            problems.append((("cases", index, "id"), f"duplicate case id '{case.id}'"))
        seen.setdefault(case.id, index)
        if case.fixtures and suite.systems is not Systems.FIXTURES:
            problems.append(
                (("cases", index, "fixtures"), "fixtures apply only with systems: fixtures")
            )
        if case.expect.judged and suite.judge is None:
            problems.append(
                (("cases", index, "expect", "judged"), "judged criteria need a `judge:` section")
            )
    return problems
