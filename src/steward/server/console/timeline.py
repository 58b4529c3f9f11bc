"""A run's journal as a timeline a person can read: one step per event, with what
matters about it (a model turn's text and tokens, a proposed call's arguments, a gate's
verdict and reasons, an approval, a tool's result, latency and cost) and the run's totals."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from steward.core import events as ev
from steward.core.dispatch import EventHandlers
from steward.server.console.render import duration, millis, pretty, usd, utc
from steward.store.runs import JournalEntry, RunRow


@dataclass(slots=True)
class Block:
    label: str
    text: str
    code: bool = False  # preformatted (JSON, raw text)


@dataclass(slots=True)
class Step:
    kind: str  # model | call | gate | approval | tool | run | note: the marker's colour
    title: str
    ts: float
    pill: str | None = None  # a status word, coloured by its tone
    meta: list[tuple[str, str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    minor: bool = False  # bookkeeping (a rate slot, a tool start): shown small


@dataclass(slots=True)
class Totals:
    cost_usd: float = 0.0
    model_ms: float = 0.0
    tool_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    model_turns: int = 0
    tool_calls: int = 0
    elapsed: str = "—"


# What an injection finding did (the spec's `injection:` section, per source)
_ACTIONS = {
    "quarantine": "quarantined",
    "review": "the calls that follow go to a person",
    "deny": "the calls that follow are denied",
    "record": "recorded only",
}


def _model(event: ev.ModelResponded, totals: Totals) -> Step:
    response = event.response
    usage = response.usage
    totals.cost_usd += usage.cost_usd
    totals.model_ms += event.latency_ms
    totals.input_tokens += usage.input_tokens
    totals.output_tokens += usage.output_tokens
    totals.model_turns += 1
    meta = [
        ("model", response.model),
        ("role", event.role),
        (
            "tokens",
            f"{usage.input_tokens:,} in · {usage.output_tokens:,} out"
            + (" (estimated: the provider reported none)" if usage.estimated else ""),
        ),
        ("latency", millis(event.latency_ms)),
    ]
    if usage.cost_usd:
        meta.append(("cost", usd(usage.cost_usd)))
    if response.confidence is not None:
        meta.append(("confidence", f"{response.confidence:.2f}"))
    if event.cached:
        meta.append(("cache", "hit (no provider call)"))
    if response.cut_off:
        meta.append(("cut off", f"finish_reason {response.finish_reason}"))
    blocks = [Block("text", response.text)] if response.text else []
    if response.tool_calls:
        names = ", ".join(c.name for c in response.tool_calls)
        blocks.append(Block("asks to call", names))
    return Step("model", f"Model turn {event.step + 1}", 0.0, None, meta, blocks)


def _gate(event: ev.GateDecided) -> Step:
    decision = event.decision
    meta = [("stage", event.stage), ("risk", f"{decision.risk:.2f}")]
    if decision.rule_ids:
        meta.append(("rules", ", ".join(decision.rule_ids)))
    reasons = "\n".join(f"{r.code} — {r.message}" for r in decision.reasons)
    blocks = [Block("reasons", reasons)] if reasons else []
    title = f"Gate decided {event.tool}"
    return Step("gate", title, 0.0, decision.verdict.value, meta, blocks)


def _generic(totals: Totals, event: ev.Event) -> Step:
    """A type with no step of its own: its name, small."""
    return Step("note", ev.event_type(event), 0.0, minor=True)


# A run's journal holds its own events only; the agent-wide ones (kill switch, keys,
# budget alerts) and feedback given later show elsewhere. Ignored types, should one
# appear, get the generic step.
_steps: EventHandlers[Totals, [], Step] = EventHandlers(
    "server.console.timeline", fallback=_generic
)
_steps.ignore(
    ev.RunQueued, ev.BreakerTripped, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.DriftAlarmed,
    ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


@_steps.on(ev.RunStarted)
def _run_started(totals: Totals, event: ev.RunStarted) -> Step:
    meta = [("agent", f"{event.agent} @ {event.agent_version}")]
    meta += [(k, v) for k, v in sorted(event.tags.items())]
    return Step("run", "Run started", 0.0, None, meta, [Block("input", event.input)])


@_steps.on(ev.ModelResponded)
def _model_responded(totals: Totals, event: ev.ModelResponded) -> Step:
    return _model(event, totals)


@_steps.on(ev.ToolCallProposed)
def _tool_call_proposed(totals: Totals, event: ev.ToolCallProposed) -> Step:
    sources = ", ".join(f"{k} from {v}" for k, v in sorted(event.sources.items()))
    meta = [("call", event.call.id)] + ([("sources", sources)] if sources else [])
    blocks = [Block("arguments", pretty(event.call.arguments), code=True)]
    return Step("call", f"Proposed call: {event.call.name}", 0.0, None, meta, blocks)


@_steps.on(ev.GateDecided)
def _gate_decided(totals: Totals, event: ev.GateDecided) -> Step:
    return _gate(event)


@_steps.on(ev.RateSlotTaken)
def _rate_slot_taken(totals: Totals, event: ev.RateSlotTaken) -> Step:
    return Step("note", f"Rate limit slot for {event.tool}: {event.used} of "
                f"{event.limit}", 0.0, minor=True)  # fmt: skip


@_steps.on(ev.ApprovalRequested)
def _approval_requested(totals: Totals, event: ev.ApprovalRequested) -> Step:
    meta = [("approval", event.approval_id), ("reason", event.reason),
            ("expires", utc(event.expires_at))]  # fmt: skip
    blocks = [Block("arguments", pretty(event.arguments), code=True)]
    return Step("approval", f"Approval requested for {event.tool}", 0.0, None,
                meta, blocks)  # fmt: skip


@_steps.on(ev.ApprovalDecided)
def _approval_decided(totals: Totals, event: ev.ApprovalDecided) -> Step:
    meta = [("by", event.by), ("approval", event.approval_id)]
    blocks = [Block("comment", event.comment)] if event.comment else []
    if event.arguments is not None:
        blocks.append(Block("edited arguments", pretty(event.arguments), code=True))
    return Step("approval", "Approval decided", 0.0, event.outcome, meta, blocks)


@_steps.on(ev.ApprovalUsed)
def _approval_used(totals: Totals, event: ev.ApprovalUsed) -> Step:
    return Step("note", f"Approval {event.approval_id} used", 0.0, minor=True)


@_steps.on(ev.ModelFailed)
def _model_failed(totals: Totals, event: ev.ModelFailed) -> Step:
    meta = [("model", event.model), ("endpoint", event.endpoint), ("code", event.code),
            ("attempt", str(event.attempt)), ("latency", millis(event.elapsed_ms))]  # fmt: skip
    return Step("model", f"Model attempt failed: {event.model}", 0.0, "failed", meta,
                [Block("error", event.message)])  # fmt: skip


@_steps.on(ev.ModelBreakerOpened)
def _model_breaker_opened(totals: Totals, event: ev.ModelBreakerOpened) -> Step:
    return Step("note", f"Circuit opened for {event.endpoint} after {event.failures} "
                "failures", 0.0)  # fmt: skip


@_steps.on(ev.ModelBreakerClosed)
def _model_breaker_closed(totals: Totals, event: ev.ModelBreakerClosed) -> Step:
    return Step("note", f"Circuit closed for {event.endpoint}", 0.0, minor=True)


@_steps.on(ev.ToolStarted)
def _tool_started(totals: Totals, event: ev.ToolStarted) -> Step:
    return Step("note", f"Executing {event.tool} (attempt {event.attempt})", 0.0,
                minor=True)  # fmt: skip


@_steps.on(ev.ToolSucceeded)
def _tool_succeeded(totals: Totals, event: ev.ToolSucceeded) -> Step:
    totals.cost_usd += event.cost_usd
    totals.tool_ms += event.latency_ms
    totals.tool_calls += 1
    meta = [("latency", millis(event.latency_ms)), ("attempts", str(event.attempts))]
    if event.cost_usd:
        meta.append(("cost", usd(event.cost_usd)))
    blocks = [Block("result", pretty(event.result), code=True)]
    return Step("tool", f"{event.tool} succeeded", 0.0, "succeeded", meta, blocks)


@_steps.on(ev.ToolFailed)
def _tool_failed(totals: Totals, event: ev.ToolFailed) -> Step:
    totals.tool_ms += event.latency_ms
    totals.tool_calls += 1
    meta = [("code", event.code), ("latency", millis(event.latency_ms)),
            ("attempts", str(event.attempts))]  # fmt: skip
    if event.on_timeout:
        meta.append(("at its timeout", event.on_timeout.replace("_", " ")))
    if event.outcome_unknown:
        meta.append(("outcome", "unknown (it may have happened)"))
    return Step("tool", f"{event.tool} failed", 0.0, "failed", meta,
                [Block("error", event.message)])  # fmt: skip


@_steps.on(ev.ResultScanned)
def _result_scanned(totals: Totals, event: ev.ResultScanned) -> Step:
    meta = [("findings", ", ".join(event.findings) or "—"),
            ("source", event.source.replace("_", " "))]  # fmt: skip
    if any(f.startswith("injection") for f in event.findings):
        meta.append(("action", _ACTIONS.get(event.action, event.action)))
    found = "\n".join(f"{d.kind} by {d.detector}, score {d.score:.2f}, at {d.path}"
                       f"[{d.start}:{d.end}]" for d in event.details)  # fmt: skip
    what = "Input" if event.key.endswith(":input") else f"Result of {event.tool}"
    return Step("gate", f"{what} scanned", 0.0,
                event.decision.verdict.value, meta,
                [Block("detections", found)] if found else [])  # fmt: skip


@_steps.on(ev.RunWaiting)
def _run_waiting(totals: Totals, event: ev.RunWaiting) -> Step:
    return Step("run", "Waiting", 0.0, "waiting", [], [Block("reason", event.reason)])


@_steps.on(ev.RunResumed)
def _run_resumed(totals: Totals, event: ev.RunResumed) -> Step:
    return Step("note", f"Resumed: {event.reason}", 0.0, minor=True)


@_steps.on(ev.RunFinished)
def _run_finished(totals: Totals, event: ev.RunFinished) -> Step:
    meta = [("steps", str(event.steps))]
    if event.confidence is not None:
        meta.append(("confidence", f"{event.confidence:.2f}"))
    if event.reason_code:
        meta.append(("reason", f"{event.reason_code} — {event.reason}"))
    blocks = [Block("output", event.output)] if event.output else []
    return Step("run", "Run finished", 0.0, event.status.value, meta, blocks)


def _step(event: ev.Event, totals: Totals) -> Step:
    step = _steps(totals, event)
    return step if step is not None else _generic(totals, event)


def build_timeline(run: RunRow, entries: list[JournalEntry]) -> tuple[list[Step], Totals]:
    totals = Totals()
    steps = []
    for entry in entries:
        step = _step(entry.event, totals)
        step.ts = entry.ts
        steps.append(step)
    end = run.finished_at if run.finished_at is not None else time.time()
    totals.elapsed = duration(end - run.created_at)
    return steps, totals
