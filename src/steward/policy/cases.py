"""A policy test file: a YAML list of calls with the decision each must get, for
`steward policy test FILE` (what `opa test` gives OPA users).

    - name: a small refund runs unattended
      spec: support_agent.yaml          # relative to this file (or --spec)
      tool: issue_refund
      arguments: {order_id: "10056", amount: 20, reason: damaged}
      context: {autonomy: supervised, sources: {order_id: tool}}
      expect: allow
      rule: condition.small-refund      # optional: a rule the decision must name

Read with the spec loader (spec.loader.load_located), so a mistake is reported as
file:line:column: field: problem."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from steward.core.agent_state import Autonomy
from steward.core.decision import Verdict
from steward.core.messages import Source
from steward.spec.loader import Marks, load_located


class CaseContext(BaseModel):
    """What the gate knows besides the call: the agent's state and the provenance of the
    arguments' values."""

    model_config = ConfigDict(extra="forbid")

    autonomy: Autonomy = Autonomy.SUPERVISED
    enabled: bool = True
    sources: dict[str, Source] = Field(default_factory=dict)


class PolicyCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    spec: str | None = Field(default=None, min_length=1)
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    context: CaseContext = Field(default_factory=CaseContext)
    expect: Verdict
    rule: str | None = Field(default=None, min_length=1)


class PolicyCases(RootModel[list[PolicyCase]]):
    pass


def load_cases(text: str, path: str) -> tuple[list[PolicyCase], Marks]:
    """The cases of a policy test file, and where each key sits in it."""
    cases, marks = load_located(text, path, PolicyCases, expected=list, what="a list of calls")
    return cases.root, marks
