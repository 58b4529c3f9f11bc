"""Traces from the journal's committed events, per the OpenTelemetry GenAI conventions.

One `invoke_agent {agent}` span per run activation (RunStarted or RunResumed until
RunWaiting or RunFinished), a `chat {model}` child per model turn and an
`execute_tool {tool}` child per proposed call. Gate decisions, approvals, retries,
result scans and breaker trips are span events. Spans carry the events' own timestamps,
so they show when things happened, not when this consumer ran.

Content (the run's input and output, model text, tool arguments and results) is recorded
only with `TraceConfig(record_content=True)`, and even then with PII masked.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    format_trace_id,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from steward import __version__
from steward.core import events as ev
from steward.core.decision import Decision, Verdict
from steward.core.dispatch import EventHandlers
from steward.security.scanners import redact_text
from steward.telemetry.stream import Committed

Attrs = dict[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class TraceConfig:
    record_content: bool = False  # prompts, outputs, arguments, results (PII masked)
    service_name: str | None = None  # else OTEL_SERVICE_NAME, else "steward"
    remembered_runs: int = 10_000  # recent runs kept for trace ids, links and resumes


def redacted(value: Any) -> Any:
    """A JSON-like copy of value with PII masked in every string."""
    if isinstance(value, str):
        return redact_text(value)[0]
    if isinstance(value, dict):
        return {str(k): redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    try:
        return redacted(msgspec.to_builtins(value, str_keys=True))
    except Exception:
        return redact_text(str(value))[0]


def redacted_json(value: Any) -> str:
    return json.dumps(redacted(value), ensure_ascii=False, sort_keys=True, default=str)


def split_model(name: str) -> tuple[str, str]:
    """`provider:model` → (provider, model); embedded models belong to "steward"."""
    provider, sep, model = name.partition(":")
    if sep and provider and model:
        return provider, model
    return "steward", name


def call_id_of(run_id: str, key: str) -> str:
    """The model's call id from an idempotency key `run_id:step:call_id`."""
    rest = key.removeprefix(f"{run_id}:")
    return rest.partition(":")[2] or rest


def ns(ts: float) -> int:
    return int(ts * 1_000_000_000)


def decision_attributes(decision: Decision, stage: str = "") -> Attrs:
    attrs: Attrs = {
        "steward.decision.verdict": decision.verdict.value,
        "steward.decision.reason_codes": [r.code for r in decision.reasons],
        "steward.decision.reason_messages": [redact_text(r.message)[0] for r in decision.reasons],
        "steward.decision.rule_ids": list(decision.rule_ids),
        "steward.decision.risk": decision.risk,
    }
    if stage:
        attrs["steward.gate.stage"] = stage
    return attrs


@dataclass(slots=True)
class _Run:
    span: Span
    agent: str
    version: str
    tools: dict[str, Span] = field(default_factory=dict)  # idempotency key → open span
    # a delegated run: (parent run id, the delegating call's key); its spans are children
    # of that call's span, so one trace covers the whole run tree
    parent: tuple[str, str] | None = None


# Spans per run; events that carry no run (agent state, keys) or nothing a trace shows.
_on: EventHandlers[TraceConsumer, [str, int], None] = EventHandlers("telemetry.tracing")
_on.ignore(
    ev.RunQueued, ev.RateSlotTaken, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.DriftAlarmed,
    ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


class TraceConsumer:
    """A journal consumer (telemetry.stream.Consumer) that turns events into spans."""

    def __init__(
        self, provider: TracerProvider | Tracer, config: TraceConfig | None = None
    ) -> None:
        self.config = config or TraceConfig()
        self.tracer = (
            provider
            if isinstance(provider, Tracer)
            else provider.get_tracer("steward", __version__)
        )
        self.errors = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._recent: OrderedDict[str, _Run] = OrderedDict()

    # -- the Consumer protocol ---------------------------------------------------------

    def __call__(self, batch: Sequence[Committed]) -> None:
        with self._lock:
            for item in batch:
                try:
                    event = item.event
                    if item.run_id and isinstance(event, ev.Event):
                        self._handle(item.run_id, item.ts, event)
                except Exception as exc:  # never raise into the journal
                    self.errors += 1
                    self.last_error = f"{item.type}: {type(exc).__name__}: {exc}"

    def trace_id_of(self, run_id: str) -> str | None:
        """The trace id (32 hex digits) of the run's current or most recent activation."""
        with self._lock:
            run = self._recent.get(run_id)
        return format_trace_id(run.span.get_span_context().trace_id) if run else None

    @property
    def open_runs(self) -> int:
        return len(self._runs)

    def close(self, ts: float | None = None) -> None:
        """End every open span (the process is stopping mid-run): status `interrupted`."""
        at = ns(time.time() if ts is None else ts)
        with self._lock:
            for run_id in list(self._runs):
                self._end_run(run_id, at, "interrupted")

    # -- events ------------------------------------------------------------------------

    def _handle(self, run_id: str, ts: float, event: ev.Event) -> None:
        _on(self, event, run_id, ns(ts))

    @_on.on(ev.RunStarted)
    def _run_started(self, event: ev.RunStarted, run_id: str, at: int) -> None:
        parent = (event.parent_run_id, event.parent_key) if event.parent_run_id else None
        self._start_run(run_id, at, event.agent, event.agent_version, event.input, parent=parent)

    @_on.on(ev.RunResumed)
    def _run_resumed(self, event: ev.RunResumed, run_id: str, at: int) -> None:
        self._start_run(run_id, at, event.agent, None, None, resumed=event.reason)

    @_on.on(ev.ModelResponded)
    def _model_responded(self, event: ev.ModelResponded, run_id: str, at: int) -> None:
        self._chat(self._run(run_id, at), at, event)

    @_on.on(ev.ToolCallProposed)
    def _proposed(self, event: ev.ToolCallProposed, run_id: str, at: int) -> None:
        span = self._tool(run_id, at, event.key, event.call.name)
        if self.config.record_content:
            span.set_attribute("gen_ai.tool.call.arguments", redacted_json(event.call.arguments))

    @_on.on(ev.GateDecided)
    def _gate_decided(self, event: ev.GateDecided, run_id: str, at: int) -> None:
        span = self._tool(run_id, at, event.key, event.tool)
        attrs = decision_attributes(event.decision, event.stage)
        span.add_event("steward.gate.decision", attrs, at)
        if event.decision.verdict is Verdict.DENY:
            self._end_tool(run_id, event.key, at, "denied", event.decision.primary_code)

    @_on.on(ev.ApprovalRequested)
    def _approval_requested(self, event: ev.ApprovalRequested, run_id: str, at: int) -> None:
        attrs: Attrs = {
            "steward.approval.id": event.approval_id,
            "steward.approval.reason": redact_text(event.reason)[0],
            "steward.approval.expires_at": event.expires_at,
        }
        if self.config.record_content:
            attrs["gen_ai.tool.call.arguments"] = redacted_json(event.arguments)
        self._tool(run_id, at, event.key, event.tool).add_event(
            "steward.approval.requested", attrs, at
        )

    @_on.on(ev.ApprovalUsed)
    def _approval_used(self, event: ev.ApprovalUsed, run_id: str, at: int) -> None:
        self._on_call(run_id, at, event.key).add_event(
            "steward.approval.used", {"steward.approval.id": event.approval_id}, at
        )

    @_on.on(ev.ToolStarted)
    def _tool_started(self, event: ev.ToolStarted, run_id: str, at: int) -> None:
        span = self._tool(run_id, at, event.key, event.tool)
        if event.attempt > 1:
            span.add_event("steward.tool.retry", {"steward.tool.attempt": event.attempt}, at)

    @_on.on(ev.ResultScanned)
    def _scanned(self, event: ev.ResultScanned, run_id: str, at: int) -> None:
        attrs = decision_attributes(event.decision)
        attrs["steward.scan.findings"] = list(event.findings)
        attrs["steward.scan.source"] = event.source
        attrs["steward.scan.action"] = event.action
        self._tool(run_id, at, event.key, event.tool).add_event("steward.result.scanned", attrs, at)

    @_on.on(ev.ToolSucceeded)
    def _tool_succeeded(self, event: ev.ToolSucceeded, run_id: str, at: int) -> None:
        span = self._tool(run_id, at, event.key, event.tool)
        span.set_attribute("steward.tool.attempts", event.attempts)
        if self.config.record_content:
            span.set_attribute("gen_ai.tool.call.result", redacted_json(event.result))
        self._end_tool(run_id, event.key, at, "succeeded")

    @_on.on(ev.ToolFailed)
    def _tool_failed(self, event: ev.ToolFailed, run_id: str, at: int) -> None:
        span = self._tool(run_id, at, event.key, event.tool)
        span.set_attribute("steward.tool.attempts", event.attempts)
        span.set_attribute("steward.tool.outcome_unknown", event.outcome_unknown)
        if event.on_timeout:
            span.set_attribute("steward.tool.on_timeout", event.on_timeout)
        if self.config.record_content:
            span.set_attribute("steward.error.message", redact_text(event.message)[0])
        self._end_tool(run_id, event.key, at, "failed", event.code)

    @_on.on(ev.ModelFailed)
    def _model_failed(self, event: ev.ModelFailed, run_id: str, at: int) -> None:
        provider, model = split_model(event.model)
        attrs: Attrs = {"gen_ai.provider.name": provider, "gen_ai.request.model": model,
                        "error.type": event.code, "steward.model.attempt": event.attempt,
                        "steward.model.endpoint": event.endpoint, "steward.step": event.step,
                        "steward.model.elapsed_ms": event.elapsed_ms}  # fmt: skip
        self._run(run_id, at).span.add_event("steward.model.failed", attrs, at)

    @_on.on(ev.ModelBreakerOpened)
    def _model_breaker_opened(self, event: ev.ModelBreakerOpened, run_id: str, at: int) -> None:
        self._model_breaker(run_id, at, event.endpoint, "opened")

    @_on.on(ev.ModelBreakerClosed)
    def _model_breaker_closed(self, event: ev.ModelBreakerClosed, run_id: str, at: int) -> None:
        self._model_breaker(run_id, at, event.endpoint, "closed")

    def _model_breaker(self, run_id: str, at: int, endpoint: str, name: str) -> None:
        attrs: Attrs = {"steward.model.endpoint": endpoint}
        self._run(run_id, at).span.add_event(f"steward.model.breaker_{name}", attrs, at)

    @_on.on(ev.BreakerTripped)
    def _breaker_tripped(self, event: ev.BreakerTripped, run_id: str, at: int) -> None:
        attrs: Attrs = {"gen_ai.tool.name": event.tool, "steward.breaker.failures": event.failures}
        attrs["steward.breaker.cooldown_seconds"] = event.cooldown_seconds
        self._run(run_id, at).span.add_event("steward.breaker.tripped", attrs, at)

    @_on.on(ev.RunWaiting)
    def _run_waiting(self, event: ev.RunWaiting, run_id: str, at: int) -> None:
        if run_id in self._runs:
            span = self._runs[run_id].span
            span.set_attribute("steward.run.approval_ids", list(event.approval_ids))
            self._end_run(run_id, at, ev.RunStatus.WAITING.value)

    # -- runs --------------------------------------------------------------------------

    def _start_run(
        self,
        run_id: str,
        at: int,
        agent: str,
        version: str | None,
        text: str | None,
        *,
        resumed: str | None = None,
        parent: tuple[str, str] | None = None,
    ) -> _Run:
        if run_id in self._runs:  # an activation that never reported its end
            self._end_run(run_id, at, "interrupted")
        recent = self._recent.get(run_id)
        agent = agent or (recent.agent if recent is not None else "")
        if version is None:
            version = recent.version if recent is not None else ""
        attrs: Attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.provider.name": "steward",
            "steward.run.id": run_id,
        }
        if version:
            attrs["steward.agent.version"] = version
        if resumed is not None:
            attrs["steward.run.resumed"] = resumed
        if text is not None and self.config.record_content:
            attrs["gen_ai.input.messages"] = redacted_json(
                [{"role": "user", "parts": [{"type": "text", "content": text}]}]
            )
        links = [Link(recent.span.get_span_context())] if recent is not None else None
        if parent is None and recent is not None:
            parent = recent.parent
        if parent is not None:
            attrs["steward.run.parent_id"] = parent[0]
        span = self.tracer.start_span(
            f"invoke_agent {agent}" if agent else "invoke_agent",
            context=self._parent_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            links=links,
            start_time=at,
        )
        run = self._runs[run_id] = _Run(span, agent, version, parent=parent)
        self._remember(run_id, run)
        return run

    def _parent_context(self, parent: tuple[str, str] | None) -> Context:
        """A root (whatever span the calling thread has open), or for a delegated run the
        span of the call that delegated to it (its parent's activation when that call's
        span is not open here)."""
        caller = self._runs.get(parent[0]) if parent is not None else None
        if caller is None or parent is None:
            return Context()
        return set_span_in_context(caller.tools.get(parent[1], caller.span))

    def _run(self, run_id: str, at: int) -> _Run:
        """The run's open activation; one is opened if this consumer joined mid-run."""
        run = self._runs.get(run_id)
        return run if run is not None else self._start_run(run_id, at, "", None, None)

    @_on.on(ev.RunFinished)
    def _finish(self, event: ev.RunFinished, run_id: str, at: int) -> None:
        span = self._run(run_id, at).span
        span.set_attribute("steward.run.steps", event.steps)
        if event.reason_code:
            span.set_attribute("steward.run.reason_code", event.reason_code)
        if event.confidence is not None:
            span.set_attribute("steward.run.confidence", event.confidence)
        if self.config.record_content and event.output:
            span.set_attribute(
                "gen_ai.output.messages",
                redacted_json(
                    [{"role": "assistant", "parts": [{"type": "text", "content": event.output}]}]
                ),
            )
        error = event.reason_code or "internal.error"
        failed = event.status is ev.RunStatus.FAILED
        self._end_run(run_id, at, event.status.value, error if failed else None)

    def _end_run(self, run_id: str, at: int, status: str, error: str | None = None) -> None:
        run = self._runs[run_id]
        for key in list(run.tools):
            self._end_tool(run_id, key, at, status)
        del self._runs[run_id]
        run.span.set_attribute("steward.run.status", status)
        if error is not None:
            run.span.set_attribute("error.type", error)
            run.span.set_status(Status(StatusCode.ERROR, error))
        run.span.end(end_time=at)
        self._remember(run_id, run)

    def _remember(self, run_id: str, run: _Run) -> None:
        """Keep the run's agent, version and span context (not the span's data)."""
        context = NonRecordingSpan(run.span.get_span_context())
        self._recent[run_id] = _Run(context, run.agent, run.version)
        self._recent.move_to_end(run_id)
        while len(self._recent) > self.config.remembered_runs:
            self._recent.popitem(last=False)

    # -- model turns and tool calls ----------------------------------------------------

    def _chat(self, run: _Run, at: int, event: ev.ModelResponded) -> None:
        response = event.response
        provider, model = split_model(response.model)
        attrs: Attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": response.usage.input_tokens,
            "gen_ai.usage.output_tokens": response.usage.output_tokens,
            "gen_ai.response.finish_reasons": [response.finish_reason],
            "steward.step": event.step,
        }
        if response.usage.estimated:
            attrs["steward.usage.estimated"] = True
        if response.usage.cost_usd:
            attrs["steward.usage.cost_usd"] = response.usage.cost_usd
        if self.config.record_content:
            parts: list[dict[str, Any]] = []
            if response.text:
                parts.append({"type": "text", "content": response.text})
            parts.extend(
                {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}
                for c in response.tool_calls
            )
            message = {"role": "assistant", "parts": parts, "finish_reason": response.finish_reason}
            attrs["gen_ai.output.messages"] = redacted_json([message])
        span = self.tracer.start_span(
            f"chat {model}",
            context=set_span_in_context(run.span),
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=at - int(event.latency_ms * 1_000_000),
        )
        span.end(end_time=at)

    def _tool(self, run_id: str, at: int, key: str, tool: str) -> Span:
        """The call's open span, opened at its first event in this activation (a call
        approved while the run waited is proposed in one activation, run in the next)."""
        run = self._run(run_id, at)
        span = run.tools.get(key)
        if span is None:
            span = run.tools[key] = self.tracer.start_span(
                f"execute_tool {tool}",
                context=set_span_in_context(run.span),
                kind=SpanKind.INTERNAL,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": tool,
                    "gen_ai.tool.call.id": call_id_of(run_id, key),
                    "steward.call.key": key,
                },
                start_time=at,
            )
        return span

    def _on_call(self, run_id: str, at: int, key: str) -> Span:
        """The call's open span, else the run's (an event with no tool name)."""
        run = self._run(run_id, at)
        return run.tools.get(key) or run.span

    def _end_tool(self, run_id: str, key: str, at: int, status: str, error: str = "") -> None:
        run = self._runs.get(run_id)
        span = run.tools.pop(key, None) if run is not None else None
        if span is None:
            return
        span.set_attribute("steward.call.status", status)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=at)

    @_on.on(ev.ApprovalDecided)
    def _approval_decided(self, event: ev.ApprovalDecided, run_id: str, at: int) -> None:
        attrs: Attrs = {
            "steward.approval.id": event.approval_id,
            "steward.approval.outcome": event.outcome,
            "steward.approval.by": event.by,
        }
        if self.config.record_content:
            if event.comment:
                attrs["steward.approval.comment"] = redact_text(event.comment)[0]
            if event.arguments is not None:
                attrs["gen_ai.tool.call.arguments"] = redacted_json(event.arguments)
        # Usually decided while the run waits, with no span open: the resumed activation
        # shows the decision as the approval stage's gate decision.
        if run_id in self._runs:
            self._on_call(run_id, at, event.key).add_event("steward.approval.decided", attrs, at)
