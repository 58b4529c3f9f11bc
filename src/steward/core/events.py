"""Typed events: every step of a run is one of these, appended to the run's journal.

The store, audit chain, traces, metrics and cost ledger all consume this one stream.
Events are msgspec structs because they sit on the hot path: encoding one is ~1 µs.

Stored events decode forever. Each type has a `schema_version` (1 unless it says
otherwise). Changing a type's shape incompatibly (renaming, retyping or removing a field,
a required new field, a new meaning) means: bump its `schema_version`, and register an
`upcaster` that turns the stored JSON of the previous version into the new shape. Stored
bytes are never rewritten (the audit chain hashes them): old versions are upcast as they
are read. An event whose version is above 1 carries it in its JSON as `"_v"`; none
written so far does. tests/test_event_versions.py holds every type's shape per version
and fails on a shape change without a new version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args

import msgspec

from steward.core.decision import Decision
from steward.core.messages import ModelResponse, Source, ToolCall
from steward.core.states import RunStatus as RunStatus  # defined there: cheap to import


class Event(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of all events. The tag (`type`) names the event; `schema_version` its shape."""

    schema_version: ClassVar[int] = 1


class RunStarted(Event, tag="run.started", frozen=True):
    agent: str
    agent_version: str
    input: str
    tags: dict[str, str] = {}
    redacted: tuple[str, ...] = ()  # kinds of identifiers masked in the input
    # the label that chose agent_version (e.g. production) and, when that label splits
    # traffic, the arm this run fell in (`stable` or `canary`); empty otherwise
    label: str = ""
    arm: str = ""
    # a delegated run (steward/orchestration/): the run whose `delegate.*`/`handoff.*`
    # call (key `parent_key`) started it, the root of its tree and its depth below the
    # root; empty, empty, 0 for a root run
    parent_run_id: str = ""
    root_run_id: str = ""
    hop: int = 0
    parent_key: str = ""


class RunQueued(Event, tag="run.queued", frozen=True):
    """Every slot of the agent (limits.max_concurrent_runs) is taken, or (the temporal
    engine) no worker has taken the run yet: the run is on record, queued, before anyone
    is told it exists. Its RunStarted follows when a slot frees (a worker takes it)."""

    agent: str
    agent_version: str
    input: str
    tags: dict[str, str] = {}
    redacted: tuple[str, ...] = ()
    label: str = ""
    arm: str = ""
    parent_run_id: str = ""
    root_run_id: str = ""
    hop: int = 0
    parent_key: str = ""

    def started(self) -> RunStarted:
        return RunStarted(self.agent, self.agent_version, self.input, self.tags, self.redacted,
                          self.label, self.arm, self.parent_run_id, self.root_run_id, self.hop,
                          self.parent_key)  # fmt: skip


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


class RunEnding(msgspec.Struct, frozen=True):
    """A call that ends its run (a `handoff.*` call, a delegation refused at the hop limit
    or as a loop: steward/orchestration/): how the run ends. The runner honours it once
    the step's calls are done, live or replayed."""

    status: RunStatus
    output: str = ""
    reason_code: str = ""
    reason: str = ""


class ToolSucceeded(Event, tag="tool.succeeded", frozen=True):
    key: str
    tool: str
    result: Any
    latency_ms: float
    attempts: int
    cost_usd: float = 0.0
    ending: RunEnding | None = None  # this call ends its run so


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
    ending: RunEnding | None = None  # this call ends its run so


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
    """A scan found something in a text the agent reads: a tool's result (ToolSucceeded
    that follows carries it as shown), or the run's input (`key` ends `:input`). `source`
    names where the text came from and `action` what the spec's `injection:` section made
    its injection findings do (quarantine, review, deny, record); a review or deny
    reaches every call proposed in a step after `step` (-1: the whole run)."""

    key: str
    tool: str
    decision: Decision
    findings: tuple[str, ...] = ()
    details: tuple[Finding, ...] = ()
    source: str = "tool_results"
    action: str = "quarantine"
    step: int = -1


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


class PersonSignedIn(Event, tag="person.signed_in", frozen=True):
    """A person signed in to the console by single sign-on: the identity provider vouched
    for (issuer, subject), whose groups gave `role`. `linked`: the first sign-in of that
    identity, which tied it to the principal (created, or found by name, then)."""

    principal: str
    name: str
    role: str
    issuer: str
    subject: str
    linked: bool = False


class McpPinChanged(Event, tag="mcp.pin_changed", frozen=True):
    """An MCP tool's definition was pinned (first sight), quarantined (it changed, or its
    description holds instructions for the model), or approved by an admin (steward/mcp/).
    Hashes are SHA-256 of the canonical definition: name, description, inputSchema and
    annotations."""

    agent: str
    tool: str  # server.tool
    status: str  # pinned | quarantined
    reason: str  # "" | mcp.definition_changed | mcp.tool_poisoning | mcp.approved
    sha256: str
    previous_sha256: str = ""
    by: str = "steward"
    detail: str = ""


class FeedbackGiven(Event, tag="run.feedback", frozen=True):
    """A person judged a run's output: `correct` or `incorrect` (with a correction)."""

    verdict: str
    by: str
    correction: str = ""
    comment: str = ""


class DriftAlarmed(Event, tag="monitor.alarm", frozen=True):
    """A drift monitor's control chart signalled: one metric of one agent version left its
    in-control baseline (monitor/series.py). `direction` says whether the metric rose or
    fell; `previous_version` is the version that ran before this one ("" if none), the
    one a rollback would return to; `webhook` is where the alert consumer posts it."""

    agent: str
    agent_version: str
    metric: str
    chart: str  # cusum | ewma
    direction: str  # up | down
    statistic: float
    limit: float
    baseline: float
    recent: float
    observations: int
    previous_version: str = ""
    webhook: str | None = None


class LabelMoved(Event, tag="agent.label_moved", frozen=True):
    """A label of an agent now points at `version` (from `previous`): a promotion on a
    passing evaluation (`suite`, `eval_result`), an admin's override (with `reason`), a
    rollback, or a canary split (`canary_version` gets `canary_percent` of runs)."""

    agent: str
    label: str
    version: str
    action: str  # promote | override | rollback | canary
    by: str
    previous: str = ""
    reason: str = ""
    suite: str = ""
    eval_result: str = ""
    canary_version: str = ""
    canary_percent: int = 0


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
    | PersonSignedIn
    | DriftAlarmed
    | LabelMoved
    | McpPinChanged
)

EVENT_TYPES: tuple[type[Event], ...] = get_args(AnyEvent)
"""Every event type the journal can hold."""


def tag_of(cls: type[Event]) -> str:
    """The stored `type` of an event class (its tag)."""
    return str(cls.__struct_config__.tag)


_encoder = msgspec.json.Encoder(order="sorted")

VERSION_KEY = "_v"  # sorts before every field name, so the JSON stays in sorted order

# Turns the stored JSON object of one version of a type into the next version's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")


class EventDecodeError(msgspec.ValidationError):
    """Stored bytes that are no version of any event type this code knows."""


class EventCodec(Generic[T]):
    """Encodes events canonically and decodes every stored version of them.

    `union` is the union of event types; `upcasters` maps (tag, version) to the function
    that turns that version's JSON into version + 1's. A type at version N needs one for
    each version 1 .. N-1, checked here: a gap fails at import, not on some old row.
    `encode(event)` gives canonical JSON (sorted keys: an event always hashes the same),
    `decode(data)` any stored version in the current shape. Decoding the current shape
    is one msgspec decode; only types above version 1 look at the stored version, and
    only old versions pay for the upcasting.
    """

    def __init__(self, union: Any, upcasters: Mapping[tuple[str, int], Upcaster] = {}) -> None:
        self.types: tuple[type[Event], ...] = get_args(union) or (union,)
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(union)
        self._by_tag = {tag_of(t): t for t in self.types}
        self._upcasters = dict(upcasters)
        self._versioned = frozenset(t for t in self.types if t.schema_version > 1)
        # While every type is at version 1 nothing stored can be older than its type:
        # encoding and decoding are msgspec's own, with nothing in between.
        self.encode: Callable[[Event], bytes] = (
            self._encode_versioned if self._versioned else _encoder.encode
        )
        self.decode: Callable[[bytes | str], T] = (
            self._decode_versioned if self._versioned else self._decoder.decode
        )
        for tag, cls in self._by_tag.items():
            for version in range(1, cls.schema_version):
                if (tag, version) not in self._upcasters:
                    raise ValueError(
                        f"event {tag} is at schema version {cls.schema_version} but has no "
                        f"upcaster from version {version}"
                    )

    def _encode_versioned(self, event: Event) -> bytes:
        data = _encoder.encode(event)
        if type(event) in self._versioned:
            version = event.schema_version
            return b'{"%s":%d,' % (VERSION_KEY.encode(), version) + data[1:]
        return data

    def _decode_versioned(self, data: bytes | str) -> T:
        try:
            event = self._decoder.decode(data)
        except msgspec.ValidationError as exc:  # an older shape, or no event at all
            return self._upcast(msgspec.json.decode(data), exc)
        if type(event) not in self._versioned:
            return event
        raw = msgspec.json.decode(data)
        if isinstance(raw, dict) and raw.get(VERSION_KEY, 1) == cast(Event, event).schema_version:
            return event
        return self._upcast(raw, None)

    def _upcast(self, raw: Any, error: msgspec.ValidationError | None) -> T:
        tag = raw.get("type") if isinstance(raw, dict) else None
        cls = self._by_tag.get(tag) if isinstance(tag, str) else None
        if cls is None or not isinstance(raw, dict) or not isinstance(tag, str):
            raise EventDecodeError(str(error) if error else f"not an event: {raw!r:.80}")
        stored = raw.pop(VERSION_KEY, 1)
        if not isinstance(stored, int) or not 1 <= stored <= cls.schema_version:
            raise EventDecodeError(f"event {tag}: unknown schema version {stored!r}")
        if stored == cls.schema_version:  # the current version, and still invalid
            raise EventDecodeError(f"event {tag} v{stored}: {error}")
        for version in range(stored, cls.schema_version):
            try:
                raw = self._upcasters[(tag, version)](raw)
            except Exception as exc:  # an upcaster that cannot read this row: say which
                raise EventDecodeError(
                    f"event {tag} upcast from v{version} to v{version + 1}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            raw["type"] = tag
        try:
            return msgspec.convert(raw, cls)  # type: ignore[return-value]
        except msgspec.ValidationError as exc:
            raise EventDecodeError(
                f"event {tag} upcast from v{stored} to v{cls.schema_version}: {exc}"
            ) from None


# Upcasters of the types in AnyEvent, by (tag, from_version). None yet: every type is at
# its first version. Register one with @upcaster("tool.failed", 1) when a type changes,
# here, before the codec below is built (it checks that no version lacks one).
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(tag: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(tag, from_version)] = fn
        return fn

    return register


_codec: EventCodec[AnyEvent] = EventCodec(AnyEvent, UPCASTERS)


# Bound methods, not wrappers: encoding sits on every append, decoding on every read.
encode_event = _codec.encode  # canonical JSON (sorted keys): an event always hashes the same
decode_event = _codec.decode  # any stored version of an event, in its current shape


def event_type(event: Event) -> str:
    return tag_of(type(event))


def canonical_json(value: Any) -> bytes:
    return _encoder.encode(value)
