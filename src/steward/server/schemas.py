"""Request and response bodies of the REST API (they document the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from steward.core.times import rfc3339
from steward.core.values import json_problem

# A time in a response: stored as Unix seconds, sent as an RFC 3339 string in UTC with
# millisecond precision and a `Z` (steward.core.times), like every time steward shows.
Time = Annotated[
    float,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2025-12-03T04:06:17.500Z"]},
        mode="serialization",
    ),
]


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON is bounded: nested at most MAX_JSON_DEPTH deep (the read routes must
    be able to serialise whatever is stored), and only finite numbers."""
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# a JSON object from a caller (edited tool arguments); the only free-form body field
JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRun(Body):
    agent: str = Field(min_length=1, max_length=64)
    input: str = Field(min_length=1, max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict)
    label: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_\-]{0,63}$",
        description="Run the version this label points at (default: the server's label, "
        "`production`, when the agent has it; else the loaded spec).",
    )


class CancelRun(Body):
    reason: str = Field(min_length=1, max_length=2000)


class Decide(Body):
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=4000)
    arguments: JsonObject | None = Field(
        default=None, description="Approve with these arguments instead; policy decides again."
    )
    confirm_changed: list[Annotated[str, Field(max_length=200)]] = Field(
        default=[],
        max_length=100,
        description="Identifier arguments (ids, accounts, recipients) the edit changes on "
        "purpose; an unconfirmed identifier change is refused with 422 naming the field.",
    )


class StateChange(Body):
    comment: str = Field(default="", max_length=2000)


class ModeChange(Body):
    mode: Literal["advisory", "supervised", "autonomous"]
    comment: str = Field(default="", max_length=2000)


class Feedback(Body):
    verdict: Literal["correct", "incorrect"]
    correction: str = Field(default="", max_length=100_000)
    comment: str = Field(default="", max_length=4000)


class Out(BaseModel):
    """A response body read off the store's row dataclass, field by field of the same name."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: object) -> Self:
        return cls.model_validate(row)


class RunOut(Out):
    id: str
    agent: str
    agent_version: str
    status: str
    input: str
    output: str
    confidence: float | None
    reason_code: str
    reason: str
    steps: int
    tags: dict[str, str]
    created_at: Time
    updated_at: Time
    finished_at: Time | None
    label: str = Field(default="", description="The label that chose agent_version; empty if none.")
    arm: str = Field(default="", description="The label's canary arm: stable, canary or empty.")
    parent_run_id: str | None = Field(
        default=None, description="The run whose delegation started this one; null for a root."
    )
    root_run_id: str | None = Field(
        default=None, description="The root of this run's tree; null for a root."
    )
    hop: int = Field(default=0, description="Depth below the root of its run tree (root: 0).")


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class RunTreeOut(BaseModel):
    run_id: str = Field(description="The run asked about.")
    root_run_id: str = Field(description="The root of its delegation tree (itself for a root).")
    chain: list[str] = Field(description="Run ids from the root down to `run_id`.")
    runs: list[RunOut] = Field(
        description="The tree depth first: the root, then each run followed by the runs it "
        "delegated to, in start order. Runs of agents the caller may not read are left out."
    )


class ApprovalOut(Out):
    id: str
    run_id: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    status: str
    reason: str
    requested_at: Time
    expires_at: Time
    decided_by: str
    comment: str
    used: bool
    # the agents of the run tree that led here, root first (delegation): ["triage",
    # "orders", "billing"]; just the agent for a run nobody delegated
    chain: list[str] = []

    @classmethod
    def with_chain(cls, row: object, chain: tuple[str, ...]) -> Self:
        out = cls.model_validate(row)
        out.chain = list(chain) or [out.agent]
        return out


class EventOut(Out):
    id: int
    run_id: str | None
    type: str
    ts: Time
    hash: str | None = None
    data: dict[str, Any]


class AuditPage(BaseModel):
    items: list[EventOut]
    next_after_id: int | None


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    head_hash: str
    problems: list[dict[str, Any]]


class AgentOut(BaseModel):
    name: str
    loaded_version: str | None
    enabled: bool
    mode: str
    state_version: int
    updated_by: str | None
    comment: str | None


class VersionOut(BaseModel):
    version: str
    created_at: Time
    spec_text: str


# -- labels and promotion -----------------------------------------------------------------

LabelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")]


class PromoteBody(Body):
    version: str = Field(min_length=1, max_length=64)
    label: LabelName = "production"
    override: bool = Field(default=False, description="Admins: without a passing evaluation.")
    reason: str = Field(default="", max_length=2000, description="Required with override.")


class RollbackBody(Body):
    label: LabelName = "production"
    reason: str = Field(default="", max_length=2000)


class CanaryBody(Body):
    version: str = Field(min_length=1, max_length=64)
    label: LabelName = "production"
    percent: int = Field(ge=0, le=100)
    override: bool = False
    reason: str = Field(default="", max_length=2000)


class LabelOut(BaseModel):
    label: str
    version: str
    canary_version: str | None
    canary_percent: int
    updated_at: Time
    updated_by: str


class LabelMoveOut(BaseModel):
    agent: str
    label: str
    version: str
    previous: str | None
    action: str
    by: str
    reason: str
    suite: str | None
    eval_result: str | None
    canary_version: str | None
    canary_percent: int
