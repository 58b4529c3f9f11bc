"""Traces from the journal's events: GenAI spans from real runs, content rules, and export
over real OTLP (HTTP and gRPC) to loopback collectors."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, format_trace_id

from steward.core.decision import allow
from steward.core.errors import ToolExecutionError
from steward.core.events import (
    BreakerTripped,
    Event,
    GateDecided,
    ModelResponded,
    RunFinished,
    RunStarted,
    RunStatus,
    ToolCallProposed,
    ToolFailed,
    ToolSucceeded,
    event_type,
)
from steward.core.messages import ModelResponse, ToolCall, Usage
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval
from steward.telemetry.otlp import build_tracer, build_tracer_provider, sampling_ratio
from steward.telemetry.prebuilt import PrebuiltTracer
from steward.telemetry.tracing import TraceConfig, TraceConsumer
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: helper
model: scripted
prompt: You help.
tools: [lookup, notify, transfer, wipe, charge]
decision_authority:
  autonomous: [lookup, notify, charge]
  requires_human_review: [transfer]
  forbidden: [wipe]
limits: {max_steps: 5, max_run_seconds: 10, max_retries: 2}
escalation: {confidence_below: 0.6, to: humans}
"""

charges: list[int] = []


@tool(effect="read")
async def lookup(name: str) -> dict[str, str]:
    return {"name": name, "email": f"{name}@example.com"}


@tool(effect="read")
async def notify(to: str, text: str) -> str:
    return "sent"


@tool(effect="write", keyed=True)
async def transfer(to: str, amount: float, ctx: ToolContext) -> dict[str, float]:
    return {"sent": amount}


@tool(effect="read")
async def wipe() -> str:
    return "wiped"


@tool(effect="write", keyed=True)
async def charge(amount: float, ctx: ToolContext) -> str:
    charges.append(ctx.attempt)
    if ctx.attempt == 1:
        raise ToolExecutionError("gateway hiccup", retryable=True)
    return "charged"


def helper(script: list[ModelResponse]) -> Any:
    loaded = load_spec_text(SPEC, "helper.yaml")
    tools = [lookup, notify, transfer, wipe, charge]
    return build_agent(loaded, tools, model=ScriptedModel(script))


class Settled:
    """Subscribed after the consumer under test: once it has seen a run wait or finish,
    so has the consumer (listeners run in order on the writer thread)."""

    def __init__(self) -> None:
        self.ends: dict[str, int] = {}

    def __call__(self, batch: Sequence[Any]) -> None:
        for item in batch:
            if item.type in ("run.waiting", "run.finished"):
                self.ends[item.run_id] = self.ends.get(item.run_id, 0) + 1

    async def wait(self, run_id: str, count: int = 1) -> None:
        deadline = time.monotonic() + 5
        while self.ends.get(run_id, 0) < count:
            assert time.monotonic() < deadline, "the consumer never saw the run end"
            await asyncio.sleep(0.005)


@dataclass
class Traced:
    runner: Runner
    consumer: TraceConsumer
    exporter: InMemorySpanExporter
    settled: Settled
    db: Database

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]


@pytest.fixture(params=["sdk", "prebuilt"])
def traced(
    sqlite_db: Database, request: pytest.FixtureRequest
) -> Iterator[Callable[[TraceConfig | None], Traced]]:
    """Every trace test runs twice: with the SDK's own tracer, and with the prebuilt-span
    tracer steward ships (telemetry.prebuilt), which must give the same spans."""
    journals: list[Journal] = []

    def make(config: TraceConfig | None = None) -> Traced:
        exporter = InMemorySpanExporter()
        source: TracerProvider | PrebuiltTracer
        if request.param == "sdk":
            source = TracerProvider()
            source.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            source = PrebuiltTracer([SimpleSpanProcessor(exporter)])
        journal = Journal(sqlite_db)
        journals.append(journal)
        consumer, settled = TraceConsumer(source, config), Settled()
        journal.subscribe(consumer)
        journal.subscribe(settled)
        return Traced(
            Runner(EmbeddedEngine(sqlite_db, journal)), consumer, exporter, settled, sqlite_db
        )

    yield make
    for journal in journals:
        journal.close()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def has(span: ReadableSpan, expected: dict[str, Any]) -> bool:
    found = attrs(span)
    return all(found.get(k) == v for k, v in expected.items())


def everything(spans: list[ReadableSpan]) -> str:
    """All attributes and event attributes of the spans, as one string."""
    parts = [repr(attrs(s)) for s in spans]
    for span in spans:
        parts += [repr(dict(e.attributes or {})) for e in span.events]
    return "\n".join(parts)


CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


async def test_a_run_becomes_an_agent_span_with_chat_and_tool_children(traced: Any) -> None:
    t: Traced = traced(None)
    agent = helper(
        [
            calls(
                ("lookup", {"name": "bob"}),
                ("notify", {"to": "bob@example.com", "text": "hi"}),
                usage=Usage(input_tokens=120, output_tokens=30),
            ),
            final("done", usage=Usage(input_tokens=200, output_tokens=12)),
        ]
    )
    result = await t.runner.run(agent, "tell bob")
    await t.settled.wait(result.run_id)
    assert result.status is RunStatus.SUCCEEDED

    [run] = t.named("invoke_agent helper")
    assert run.parent is None
    assert has(
        run,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "helper",
            "steward.run.id": result.run_id,
            "steward.run.status": "succeeded",
            "steward.agent.version": agent.version,
        },
    )
    assert run.status.status_code is StatusCode.UNSET
    chats = sorted(t.named("chat scripted"), key=lambda s: s.start_time or 0)
    tools = {s.name: s for s in t.spans() if s.name.startswith("execute_tool")}
    assert len(chats) == 2 and set(tools) == {"execute_tool lookup", "execute_tool notify"}
    for child in [*chats, *tools.values()]:
        assert child.parent is not None and child.parent.span_id == run.context.span_id
        assert child.context.trace_id == run.context.trace_id
        slack = 2_000_000  # wall clock vs the runner's perf_counter latency: 2 ms
        assert run.start_time - slack <= child.start_time <= child.end_time <= run.end_time  # type: ignore[operator]
    first, second = chats
    assert has(
        first,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "steward",
            "gen_ai.request.model": "scripted",
            "gen_ai.response.model": "scripted",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
        },
    )
    assert attrs(first)["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attrs(second)["gen_ai.usage.input_tokens"] == 200
    assert attrs(second)["gen_ai.response.finish_reasons"] == ("stop",)
    assert first.end_time <= tools["execute_tool lookup"].start_time  # type: ignore[operator]
    looked = tools["execute_tool lookup"]
    assert has(
        looked,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.id": "call_0",
            "steward.call.key": f"{result.run_id}:0:call_0",
            "steward.call.status": "succeeded",
        },
    )
    assert attrs(tools["execute_tool notify"])["gen_ai.tool.call.id"] == "call_1"
    decisions = [e for e in looked.events if e.name == "steward.gate.decision"]
    assert decisions and dict(decisions[0].attributes or {})["steward.decision.verdict"] == "allow"
    [scanned] = [e for e in looked.events if e.name == "steward.result.scanned"]
    assert "pii.email" in (scanned.attributes or {})["steward.scan.findings"]
    # content stays out by default
    for span in t.spans():
        assert not set(attrs(span)) & set(CONTENT_KEYS), span.name
    assert "bob@example.com" not in everything(t.spans())
    assert t.consumer.errors == 0 and t.consumer.open_runs == 0
    assert t.consumer.trace_id_of(result.run_id) == format_trace_id(run.context.trace_id)


async def test_denied_call_and_retry_are_span_events(traced: Any) -> None:
    t: Traced = traced(None)
    charges.clear()
    script = [calls(("wipe", {}), ("charge", {"amount": 5.0})), final("partly done")]
    result = await t.runner.run(helper(script), "wipe and charge")
    await t.settled.wait(result.run_id)
    [wiped] = t.named("execute_tool wipe")
    assert wiped.status.status_code is StatusCode.ERROR
    assert attrs(wiped)["error.type"] == "tool.forbidden"
    assert attrs(wiped)["steward.call.status"] == "denied"
    [denial] = [e for e in wiped.events if e.name == "steward.gate.decision"]
    denied = dict(denial.attributes or {})
    assert denied["steward.decision.verdict"] == "deny"
    assert denied["steward.decision.reason_codes"] == ("tool.forbidden",)
    assert denied["steward.gate.stage"] == "policy"
    assert denied["steward.decision.rule_ids"]
    [charged] = t.named("execute_tool charge")
    assert charges == [1, 2]
    [retry] = [e for e in charged.events if e.name == "steward.tool.retry"]
    assert dict(retry.attributes or {}) == {"steward.tool.attempt": 2}
    assert charged.status.status_code is StatusCode.UNSET
    assert attrs(charged)["steward.tool.attempts"] == 2


async def test_review_ends_the_activation_waiting_and_resume_links_to_it(traced: Any) -> None:
    t: Traced = traced(None)
    agent = helper([calls(("transfer", {"to": "bob", "amount": 10})), final("sent")])
    waiting = await t.runner.run(agent, "send bob 10")
    await t.settled.wait(waiting.run_id)
    assert waiting.status is RunStatus.WAITING
    [first] = t.named("invoke_agent helper")
    assert attrs(first)["steward.run.status"] == "waiting"
    assert attrs(first)["steward.run.approval_ids"] == waiting.waiting_on
    [parked] = t.named("execute_tool transfer")
    assert attrs(parked)["steward.call.status"] == "waiting"
    assert parked.status.status_code is StatusCode.UNSET
    names = [e.name for e in parked.events]
    assert names == ["steward.gate.decision", "steward.approval.requested"]
    review, requested = (dict(e.attributes or {}) for e in parked.events)
    assert review["steward.decision.verdict"] == "review"
    assert requested["steward.approval.id"] == waiting.waiting_on[0]
    assert t.consumer.open_runs == 0

    decide_approval(t.db, waiting.waiting_on[0], approve=True, by="alice")
    done = await t.runner.resume(agent, waiting.run_id)
    await t.settled.wait(waiting.run_id, 2)
    assert done.status is RunStatus.SUCCEEDED
    second = next(s for s in t.named("invoke_agent helper") if s.context != first.context)
    assert attrs(second)["steward.run.status"] == "succeeded"
    assert attrs(second)["steward.agent.version"] == agent.version
    assert attrs(second)["steward.run.resumed"] == "resumed"
    assert [link.context for link in second.links] == [first.context]
    [ran] = [s for s in t.named("execute_tool transfer") if s.context != parked.context]
    assert ran.parent is not None and ran.parent.span_id == second.context.span_id
    assert attrs(ran)["gen_ai.tool.call.id"] == "call_0"
    assert "steward.approval.used" in [e.name for e in ran.events]
    assert attrs(ran)["steward.call.status"] == "succeeded"
    assert t.consumer.trace_id_of(waiting.run_id) == format_trace_id(second.context.trace_id)


async def test_content_is_recorded_only_when_asked_and_then_redacted(traced: Any) -> None:
    t: Traced = traced(TraceConfig(record_content=True))
    script = [
        calls(("notify", {"to": "carol@example.com", "text": "call +1 415-555-0132"})),
        final("told carol@example.com"),
    ]
    result = await t.runner.run(helper(script), "email carol@example.com please")
    await t.settled.wait(result.run_id)
    [sent] = t.named("execute_tool notify")
    arguments = json.loads(attrs(sent)["gen_ai.tool.call.arguments"])
    assert arguments == {"to": "[EMAIL]", "text": "call [PHONE]"}
    assert json.loads(attrs(sent)["gen_ai.tool.call.result"]) == "sent"
    [run] = t.named("invoke_agent helper")
    [asked] = json.loads(attrs(run)["gen_ai.input.messages"])
    assert asked["parts"][0]["content"] == "email [EMAIL] please"
    [answered] = json.loads(attrs(run)["gen_ai.output.messages"])
    assert answered["parts"][0]["content"] == "told [EMAIL]"
    first_chat = min(t.named("chat scripted"), key=lambda s: s.start_time or 0)
    [turn] = json.loads(attrs(first_chat)["gen_ai.output.messages"])
    assert turn["parts"][0]["arguments"]["to"] == "[EMAIL]"
    assert "carol@example.com" not in everything(t.spans())
    assert "555-123-4567" not in everything(t.spans())


# -- synthetic events: exact timestamps, errors, export ------------------------------


@dataclass(frozen=True)
class Item:
    run_id: str | None
    ts: float
    type: str
    event: object


def item(run_id: str, ts: float, event: Event) -> Item:
    return Item(run_id, ts, event_type(event), event)


def a_run(run_id: str = "run_x", t0: float = 1_700_000_000.0) -> list[Item]:
    call = ToolCall("c1", "lookup", {"name": "bob"})
    key = f"{run_id}:0:c1"
    turn = ModelResponse("openai:gpt-4o", tool_calls=(call,), finish_reason="tool_calls")
    return [
        item(run_id, t0, RunStarted("helper", "v1", "hi")),
        item(run_id, t0 + 0.5, ModelResponded(0, turn, 250.0)),
        item(run_id, t0 + 0.6, ToolCallProposed(0, call, key)),
        item(run_id, t0 + 0.61, GateDecided(key, "lookup", "policy", allow("tier.ok", "fine"))),
        item(run_id, t0 + 0.7, ToolSucceeded(key, "lookup", {"ok": True}, 90.0, 1)),
        item(run_id, t0 + 1.0, RunFinished(RunStatus.FAILED, reason_code="internal.error")),
    ]


def test_spans_carry_the_events_timestamps_and_provider_prefix() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    consumer = TraceConsumer(provider)
    consumer(a_run())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    t0 = 1_700_000_000_000_000_000
    run, chat = spans["invoke_agent helper"], spans["chat gpt-4o"]
    tool_span = spans["execute_tool lookup"]
    assert (run.start_time, run.end_time) == (t0, t0 + 1_000_000_000)
    assert (chat.start_time, chat.end_time) == (t0 + 250_000_000, t0 + 500_000_000)
    assert (tool_span.start_time, tool_span.end_time) == (t0 + 600_000_000, t0 + 700_000_000)
    assert attrs(chat)["gen_ai.provider.name"] == "openai"
    assert attrs(chat)["gen_ai.request.model"] == "gpt-4o"
    assert run.status.status_code is StatusCode.ERROR
    assert attrs(run)["steward.run.status"] == "failed"


def test_joining_mid_run_failures_breaker_trips_and_close() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    consumer = TraceConsumer(provider)
    assert consumer.trace_id_of("run_y") is None
    key = "run_y:3:c9"
    consumer(
        [  # this process never saw RunStarted: the run span opens at the first event
            item("run_y", 10.0, ToolCallProposed(3, ToolCall("c9", "pay", {}), key)),
            item(
                "run_y",
                10.5,
                ToolFailed(key, "pay", "tool.timeout", "no result", 3, on_timeout="cancelled"),
            ),
            item("run_y", 10.6, BreakerTripped("pay", 5, 30.0)),
        ]
    )
    assert consumer.trace_id_of("run_y") is not None and consumer.open_runs == 1
    [failed] = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["error.type"] == "tool.timeout"
    assert attrs(failed)["steward.tool.on_timeout"] == "cancelled"
    assert attrs(failed)["gen_ai.tool.call.id"] == "c9"
    consumer.close(11.0)
    run = exporter.get_finished_spans()[-1]
    assert (run.name, attrs(run)["steward.run.status"]) == ("invoke_agent", "interrupted")
    assert [e.name for e in run.events] == ["steward.breaker.tripped"]
    assert failed.parent is not None and failed.parent.span_id == run.context.span_id


def test_a_failing_event_is_counted_never_raised() -> None:
    provider = TracerProvider()
    consumer = TraceConsumer(provider)

    class Broken:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter on fire")

    consumer.tracer = Broken()
    consumer([*a_run()[:1], Item("run_x", 0.0, "odd", object()), Item(None, 0.0, "x", None)])
    assert consumer.errors == 1 and "exporter on fire" in consumer.last_error


def test_no_endpoint_or_disabled_means_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert build_tracer_provider() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert build_tracer_provider() is None
    monkeypatch.setenv("OTEL_SDK_DISABLED", "false")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        build_tracer_provider()


# -- real OTLP to loopback collectors ----------------------------------------------------


def _otlp_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, protocol: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "5")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "steward-test")


Request = trace_service_pb2.ExportTraceServiceRequest


def _received(requests: list[Request]) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    services: set[str] = set()
    for request in requests:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    return names, services


def _export_a_run() -> None:
    tracer = build_tracer()  # what `steward` installs: prebuilt spans, batch processor, OTLP
    assert tracer is not None
    TraceConsumer(tracer)(a_run())
    tracer.shutdown()  # flushes the batch processor


class _Collector(ThreadingHTTPServer):
    requests: list[tuple[str, trace_service_pb2.ExportTraceServiceRequest]]


class _Handler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, request))
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_collector() -> Iterator[_Collector]:
    server = _Collector(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_spans_arrive_over_otlp_http(
    http_collector: _Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = http_collector.server_address[1]
    _otlp_env(monkeypatch, f"http://127.0.0.1:{port}/v1/traces", "http/protobuf")
    _export_a_run()
    assert {path for path, _ in http_collector.requests} == {"/v1/traces"}
    names, services = _received([r for _, r in http_collector.requests])
    assert names == {"invoke_agent helper", "chat gpt-4o", "execute_tool lookup"}
    assert services == {"steward-test"}


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[int, _Servicer]]:
    servicer = _Servicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(grace=None).wait(5)


def test_spans_arrive_over_otlp_grpc(
    grpc_collector: tuple[int, _Servicer], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, servicer = grpc_collector
    _otlp_env(monkeypatch, f"http://127.0.0.1:{port}", "grpc")
    _export_a_run()
    names, services = _received(servicer.requests)
    assert names == {"invoke_agent helper", "chat gpt-4o", "execute_tool lookup"}
    assert services == {"steward-test"}


@pytest.mark.parametrize(("sampler", "arg", "expected"), [
    ("", "", 1.0), ("always_off", "", 0.0), ("parentbased_traceidratio", "0.25", 0.25),
])  # fmt: skip
def test_sampling_follows_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, sampler: str, arg: str, expected: float
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    assert sampling_ratio() == expected


def test_a_bad_sampler_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "2")
    with pytest.raises(ValueError, match="between 0 and 1"):
        sampling_ratio()


def test_prebuilt_sampling_keeps_whole_traces_in_proportion() -> None:
    exporter = InMemorySpanExporter()
    consumer = TraceConsumer(PrebuiltTracer([SimpleSpanProcessor(exporter)], ratio=0.25))
    for n in range(400):
        consumer(a_run(f"run_{n}", 1_700_000_000.0 + n))
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert 50 < len(roots) < 150, "about a quarter of 400 runs"
    kept = {s.context.trace_id for s in roots}
    assert all(s.context.trace_id in kept for s in spans), "children follow their root's decision"
    assert len(spans) == len(roots) * (len(spans) // len(roots))
