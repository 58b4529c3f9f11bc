"""Event dispatch and the versioned codec against the code they replaced, in the same run.

Dispatch: the registry (core/dispatch.py) on two hot paths, the projections (run inside
every journal commit) and the replay fold (RunHistory.apply, every event of a run on
resume), against the code before it: a `type in PROJECTED` check then an isinstance
chain, and an if/elif isinstance chain. Codec: core/events.py's EventCodec against bare
msgspec encode/decode (every append encodes, every journal read decodes). The event mix
is one realistic run: start, model turns, proposals, decisions, rate slots, tool starts
and results, a finish.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from _common import Measurement, Report, main, sample_sync, scaled
from steward.core import events as ev
from steward.core.decision import Decision, Verdict
from steward.core.messages import ModelResponse, ToolCall, Usage
from steward.gate.outcome import CallStatus
from steward.runtime.history import RunHistory
from steward.store.projections import PROJECTED, project

RUN = "run_0123456789abcdef"


def run_events() -> list[ev.Event]:
    """One run of ten steps: every step a model turn and a governed, executed call."""
    out: list[ev.Event] = [ev.RunStarted("support", "v1", "where is my order?")]
    for step in range(10):
        key = f"{RUN}:{step}:call_{step}"
        call = ToolCall(f"call_{step}", "lookup_order", {"order_id": f"A-{step}"})
        usage = Usage(input_tokens=900, output_tokens=40, cost_usd=0.0012)
        out += [
            ev.ModelResponded(
                step, ModelResponse("m", "", (call,), None, "tool_calls", usage), 120.0
            ),
            ev.ToolCallProposed(step, call, key),
            ev.RateSlotTaken(key, "lookup_order", step + 1, 100),
            ev.GateDecided(key, "lookup_order", "policy", Decision(Verdict.ALLOW)),
            ev.ToolStarted(key, "lookup_order", 1),
            ev.ToolSucceeded(key, "lookup_order", {"status": "shipped"}, 1.5, 1),
        ]
    out.append(ev.RunFinished(ev.RunStatus.SUCCEEDED, "shipped", 0.9, steps=10))
    return out


# -- the code before the registry (projections.py and history.py at 70de25f) -------------

_COST = (
    "INSERT INTO cost_ledger (run_id, agent, tags, model, day, ts, input_tokens, output_tokens,"
    " cached_input_tokens, cost_usd, estimated) SELECT id, agent, tags, ?, ?, ?, ?, ?, ?, ?, ?"
    " FROM runs WHERE id = ?"
)
_INSERT_RUN = (
    "INSERT INTO runs (id, agent, agent_version, status, input, output, reason_code, reason,"
    " steps, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', '', '', 0, ?, ?, ?)"
)
_SQL = {
    "run.queued": _INSERT_RUN,
    # A queued run's row is there already: it starts running, keeping when it was created.
    "run.started": _INSERT_RUN
    + " ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
    # A finished run stays finished: the first finish stands (a cancel may race a finish).
    "run.resumed": "UPDATE runs SET status = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL",
    "run.waiting": (
        "UPDATE runs SET status = ?, reason_code = ?, reason = ?, updated_at = ? WHERE id = ?"
        " AND finished_at IS NULL"
    ),
    "run.finished": (
        "UPDATE runs SET status = ?, output = ?, confidence = ?, reason_code = ?, reason = ?,"
        " steps = ?, updated_at = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL"
    ),
    "approval.requested": (
        "INSERT INTO approvals (id, run_id, call_id, agent, tool, arguments, call_hash, status,"
        " reason, requested_at, expires_at, comment) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, '')"
    ),
    "approval.used": "UPDATE approvals SET used_at = ? WHERE id = ?",
    # cost rows take the agent and tags from the run they belong to
    "model.responded": _COST,
    "tool.succeeded": _COST,
}
_PROJECTED = frozenset(_SQL)


def _baseline_params(run_id: str, ts: float, event: object) -> tuple[Any, ...]:
    if isinstance(event, ev.RunStarted | ev.RunQueued):
        tags = json.dumps(event.tags, sort_keys=True)
        status = ev.RunStatus.QUEUED if isinstance(event, ev.RunQueued) else ev.RunStatus.RUNNING
        return (
            run_id,
            event.agent,
            event.agent_version,
            status.value,
            event.input,
            tags,
            ts,
            ts,
        )
    if isinstance(event, ev.RunResumed):
        return (ev.RunStatus.RUNNING.value, ts, run_id)
    if isinstance(event, ev.RunWaiting):
        return (ev.RunStatus.WAITING.value, "approval.pending", event.reason, ts, run_id)
    if isinstance(event, ev.RunFinished):
        return (event.status.value, event.output, event.confidence, event.reason_code, event.reason,
                event.steps, ts, ts, run_id)  # fmt: skip
    if isinstance(event, ev.ApprovalRequested):
        arguments = json.dumps(event.arguments, sort_keys=True)
        return (event.approval_id, run_id, event.key, event.agent, event.tool, arguments, event.call_hash,
                event.reason, ts, event.expires_at)  # fmt: skip
    if isinstance(event, ev.ApprovalUsed):
        return (ts, event.approval_id)
    raise ValueError(type(event).__name__)


def baseline_projection(
    run_id: str, ts: float, type_: str, event: object
) -> tuple[str, tuple[Any, ...]] | None:
    """The statement (qmark style) and parameters that project one event, if any."""
    if isinstance(event, ev.ModelResponded):
        usage = event.response.usage
        return _COST, (event.response.model, int(ts // 86400), ts, usage.input_tokens, usage.output_tokens,
                       usage.cached_input_tokens, usage.cost_usd, usage.estimated, run_id)  # fmt: skip
    if isinstance(event, ev.ToolSucceeded):
        if event.cost_usd <= 0:
            return None
        return _COST, (f"tool:{event.tool}", int(ts // 86400), ts, 0, 0, 0, event.cost_usd, False,
                       run_id)  # fmt: skip
    if type_ not in _PROJECTED:  # chain.append_rows checked this first
        return None
    return _SQL[type_], _baseline_params(run_id, ts, event)


def baseline_fold(self: RunHistory, event: ev.Event) -> None:
    """RunHistory.apply as it was: an if/elif isinstance chain."""
    if isinstance(event, ev.ToolCallProposed):
        self._proposed[event.key] = event.call
        self._record(event.key).proposed = True
        self._record(event.key).sources = dict(event.sources)
    elif isinstance(event, ev.GateDecided):
        self._decisions[event.key] = event.decision
        if event.decision.verdict is Verdict.DENY:
            self._record(event.key).outcome = self._outcome(
                event.key,
                CallStatus.DENIED,
                event.decision,
                code=event.decision.primary_code,
                error=event.decision.reasons[0].message if event.decision.reasons else "denied",
            )
    elif isinstance(event, ev.ToolSucceeded):
        decision = self._decisions.get(event.key, Decision(Verdict.ALLOW))
        self._record(event.key).outcome = self._outcome(
            event.key, CallStatus.EXECUTED, decision, result=event.result
        )
    elif isinstance(event, ev.ResultScanned):
        self._decisions[event.key] = event.decision
    elif isinstance(event, ev.ToolFailed):
        status = CallStatus.UNKNOWN if event.outcome_unknown else CallStatus.FAILED
        decision = self._decisions.get(event.key, Decision(Verdict.ALLOW))
        self._record(event.key).outcome = self._outcome(
            event.key, status, decision, code=event.code, error=event.message
        )
    elif isinstance(event, ev.ToolStarted):
        self._record(event.key).started = True
    elif isinstance(event, ev.ApprovalRequested):
        self._record(event.key).approval_id = event.approval_id
    elif isinstance(event, ev.ApprovalUsed):
        self._record(event.key).approval_used = True
    elif isinstance(event, ev.ModelResponded):
        self.models[event.step] = event.response
    elif isinstance(event, ev.RunStarted):
        self.started = event
    elif isinstance(event, ev.RunQueued):
        self.queued = event
    elif isinstance(event, ev.RunFinished) and self.finished is None:
        self.finished = event  # the first finish stands (a cancel may race a finish)


async def collect(quick: bool) -> Report:
    events = run_events()
    typed = [(ev.event_type(e), e) for e in events]
    rounds = scaled(quick, 2_000, 300)
    per = len(events) * 20  # events per timed sample
    report = Report(
        "dispatch",
        "Event dispatch and codec: registry and versioned codec vs the code they replaced",
        quick,
        params={"events_per_run": len(events), "events_per_sample": per, "samples": rounds},
    )
    batch = typed * 20

    def registry_projection(_: int) -> None:
        for _type, event in batch:  # as chain.append_rows does
            if type(event) in PROJECTED:
                project(RUN, event, 1.0)

    def chain_projection(_: int) -> None:
        for type_, event in batch:
            baseline_projection(RUN, 1.0, type_, event)

    def registry_fold(_: int) -> None:
        for _ in range(20):
            history = RunHistory()
            for event in events:
                history.apply(event)

    def chain_fold(_: int) -> None:
        for _ in range(20):
            history = RunHistory()
            for event in events:
                baseline_fold(history, event)

    bare_encoder = msgspec.json.Encoder(order="sorted")
    bare_decoder = msgspec.json.Decoder(ev.AnyEvent)

    def old_encode_event(event: ev.Event) -> bytes:  # core/events.py before the codec
        return bare_encoder.encode(event)

    def old_decode_event(data: bytes) -> Any:
        return bare_decoder.decode(data)

    encoded = [ev.encode_event(e) for _, e in batch]
    assert [old_encode_event(e) for _, e in batch] == encoded  # the same bytes as before

    def codec_encode(_: int) -> None:
        for _type, event in batch:
            ev.encode_event(event)

    def bare_encode(_: int) -> None:
        for _type, event in batch:
            old_encode_event(event)

    def codec_decode(_: int) -> None:
        for data in encoded:
            ev.decode_event(data)

    def bare_decode(_: int) -> None:
        for data in encoded:
            old_decode_event(data)

    cases = (
        ("encode_bare", "encode_event before the codec", bare_encode),
        ("encode_codec", "encode_event, versioned codec", codec_encode),
        ("decode_bare", "decode_event before the codec", bare_decode),
        ("decode_codec", "decode_event, versioned codec", codec_decode),
        ("projection_chain", "projections: isinstance chain (before)", chain_projection),
        ("projection_registry", "projections: registry (after)", registry_projection),
        ("fold_chain", "replay fold: isinstance chain (before)", chain_fold),
        ("fold_registry", "replay fold: registry (after)", registry_fold),
    )
    # Interleaved in rounds (before, after, before, after, ...) so that drift on a shared
    # machine does not favour whichever runs second.
    rounds_of = 5
    samples: dict[str, list[int]] = {key: [] for key, _, _ in cases}
    for _ in range(rounds_of):
        for key, _label, fn in cases:
            samples[key] += sample_sync(fn, max(1, rounds // rounds_of), 5)
    measured = {
        key: report.add(Measurement(key, label, samples[key], per_sample=per, unit="event"))
        for key, label, _ in cases
    }
    pairs = {
        "projection": ("projection_chain", "projection_registry"),
        "fold": ("fold_chain", "fold_registry"),
        "encode": ("encode_bare", "encode_codec"),
        "decode": ("decode_bare", "decode_codec"),
    }
    for name, (base, new) in pairs.items():
        before, after = measured[base], measured[new]
        report.figure(
            f"{name}_ratio",
            f"{name}: after p50 / before p50",
            after.p50_us / before.p50_us,
            target="≤ 1.10",
            ok=after.p50_us / before.p50_us <= 1.10,
        )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
