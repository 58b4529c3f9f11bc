"""Typed events: every step of a run is one of these, appended to the run's journal.

The store, audit chain, traces, metrics and cost ledger all consume this one stream.
Events are msgspec structs because they sit on the hot path: encoding one is ~1 µs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from steward.core.decision import Decision
from steward.core.messages import ModelResponse, Source, ToolCall
from steward.core.states import RunStatus as RunStatus  # defined there: cheap to import


class Event(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of all events. The tag (`type`) is the class name in snake case."""


class RunStarted(Event, tag="run.started", frozen=True):
    agent: str
    agent_version: str
    input: str
    tags: dict[str, str] = {}
    redacted: tuple[str, ...] = ()  # kinds of identifiers masked in the input


class RunQueued(Event, tag="run.queued", frozen=True):
    """Every slot of the agent (limits.max_concurrent_runs) is taken: the run is on record,
    queued, before anyone is told it exists. Its RunStarted follows when a slot frees."""

    agent: str
    agent_version: str
    input: str
    tags: dict[str, str] = {}
    redacted: tuple[str, ...] = ()

    def started(self) -> RunStarted:
        return RunStarted(self.agent, self.agent_version, self.input, self.tags, self.redacted)


class RunResumed(Event, tag="run.resumed", frozen=True):
    reason: str
    agent: str = ""  # so consumers that start mid-run (a new process) know whose run it is


class ModelResponded(Event, tag="model.responded", frozen=True):
    step: int
    response: ModelResponse
    latency_ms: float
    role: str = "reason"
    cached: bool = False  # served from the response cache: no provider call, no cost


class ModelFailed(Event, tag="model.failed", frozen=True):
    """One failed attempt at one model endpoint. The step may still be served by a retry
    or a fallback; `streamed`: text had reached the client before the failure."""

    model: str
    endpoint: str
    code: str
    message: str
    attempt: int
    elapsed_ms: float
    step: int = -1
    streamed: bool = False


class ModelBreakerOpened(Event, tag="model.breaker_opened", frozen=True):
    endpoint: str
    failures: int
    cooldown_seconds: float


class ModelBreakerClosed(Event, tag="model.breaker_closed", frozen=True):
    endpoint: str


class ToolCallProposed(Event, tag="tool.proposed", frozen=True):
    step: int
    call: ToolCall
    key: str
    sources: dict[str, Source] = {}


class GateDecided(Event, tag="gate.decided", frozen=True):
    key: str
    tool: str
    stage: str
    decision: Decision


class RateSlotTaken(Event, tag="gate.rate_slot", frozen=True):
    """A call took a slot of its tool's rate limit: `used` of `limit` in the window."""

    key: str
    tool: str
    used: int
    limit: int


class ApprovalRequested(Event, tag="approval.requested", frozen=True):
    approval_id: str
    agent: str
    key: str
    tool: str
    arguments: dict[str, Any]
    call_hash: str
    expires_at: float
    reason: str


class ApprovalDecided(Event, tag="approval.decided", frozen=True):
    approval_id: str
    key: str
    outcome: str  # approved | rejected | expired | cancelled (its run was cancelled)
    by: str  # a readable label
    comment: str = ""
    arguments: dict[str, Any] | None = None
    principal: str = ""  # who decided, by principal id ("" for the system: expiry, cancel)


class ApprovalUsed(Event, tag="approval.used", frozen=True):
    """An approved call was released to execute; an approval is used once. `call_hash`
    is the SHA-256 of the call released: the requested one, or, approved with edited
    arguments, the new call (which policy decided again)."""

    approval_id: str
    key: str
    call_hash: str = ""


class ToolStarted(Event, tag="tool.started", frozen=True):
    """The write-ahead intent: recorded durably before a side effect may happen."""

    key: str
    tool: str
    attempt: int


class ToolSucceeded(Event, tag="tool.succeeded", frozen=True):
    key: str
    tool: str
    result: Any
    latency_ms: float
    attempts: int
    cost_usd: float = 0.0


class ToolFailed(Event, tag="tool.failed", frozen=True):
    key: str
    tool: str
    code: str
    message: str
    attempts: int
    outcome_unknown: bool = False
    latency_ms: float = 0.0
    # how a call cut off at its timeout ended (ON_TIMEOUT in gate/stages/execute.py):
    # "cancelled", "left_running" or "not_started"; "" when it did not time out
    on_timeout: str = ""


class Finding(msgspec.Struct, frozen=True):
    """What a detector found in one string of a value: where (its JSON path, and the
    characters of that string), how sure it is (0..1), and which detector said so."""

    kind: str
    detector: str
    path: str
    score: float
    start: int
    end: int


class ResultScanned(Event, tag="tool.scanned", frozen=True):
    """A scan changed the result; ToolSucceeded that follows carries the result as shown."""

    key: str
    tool: str
    decision: Decision
    findings: tuple[str, ...] = ()
    details: tuple[Finding, ...] = ()


class BreakerTripped(Event, tag="tool.breaker_tripped", frozen=True):
    tool: str
    failures: int
    cooldown_seconds: float


class BudgetThresholdCrossed(Event, tag="budget.threshold_crossed", frozen=True):
    """Today's spend of an agent passed `alert_on_threshold` of its daily budget."""

    agent: str
    spent_usd: float
    limit_usd: float
    threshold: float
    webhook: str | None = None  # where the alert consumer posts it (cost_controls.alert_webhook)


class RunWaiting(Event, tag="run.waiting", frozen=True):
    reason: str
    approval_ids: tuple[str, ...] = ()
    steps: int = 0  # model turns so far (journals from before this field read 0)


class RunFinished(Event, tag="run.finished", frozen=True):
    status: RunStatus
    output: str = ""
    confidence: float | None = None
    reason_code: str = ""
    reason: str = ""
    steps: int = 0


class AgentStateChanged(Event, tag="agent.state_changed", frozen=True):
    """The kill switch or the autonomy mode of an agent changed: each change is a
    recorded, audited configuration version."""

    agent: str
    enabled: bool
    by: str
    comment: str = ""
    mode: str = "supervised"  # advisory | supervised | autonomous


class KeyCreated(Event, tag="key.created", frozen=True):
    """An API key was issued. The secret is never recorded, only who got which role."""

    key_id: str
    name: str
    role: str  # admin | reviewer | viewer | agent
    agent: str | None
    by: str
    principal: str = ""  # the principal holding the key (its id)


class KeyRevoked(Event, tag="key.revoked", frozen=True):
    key_id: str
    by: str
    comment: str = ""


class FeedbackGiven(Event, tag="run.feedback", frozen=True):
    """A person judged a run's output: `correct` or `incorrect` (with a correction)."""

    verdict: str
    by: str
    correction: str = ""
    comment: str = ""


AnyEvent = (
    RunStarted
    | RunQueued
    | RunResumed
    | ModelResponded
    | ModelFailed
    | ModelBreakerOpened
    | ModelBreakerClosed
    | ToolCallProposed
    | GateDecided
    | RateSlotTaken
    | ApprovalRequested
    | ApprovalDecided
    | ApprovalUsed
    | ToolStarted
    | ToolSucceeded
    | ToolFailed
    | ResultScanned
    | BreakerTripped
    | BudgetThresholdCrossed
    | RunWaiting
    | RunFinished
    | AgentStateChanged
    | KeyCreated
    | KeyRevoked
    | FeedbackGiven
)

_encoder = msgspec.json.Encoder(order="sorted")
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def encode_event(event: Event) -> bytes:
    """Canonical JSON: sorted keys, so the same event always hashes the same."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnyEvent:
    return _decoder.decode(data)


def event_type(event: Event) -> str:
    tag = type(event).__struct_config__.tag
    return str(tag)


def canonical_json(value: Any) -> bytes:
    return _encoder.encode(value)
