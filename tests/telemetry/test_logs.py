"""JSON log lines from the journal's events: one per event, with run, agent and trace ids,
a short summary, and content only when asked (then with PII masked)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from steward.core.events import RunFinished, RunStarted, RunStatus, ToolFailed, event_type
from steward.core.messages import Usage
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.telemetry.logs import JsonLogConsumer
from steward.telemetry.tracing import TraceConsumer
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: desk
model: scripted
tools: [notify, wipe]
decision_authority:
  autonomous: [notify]
  forbidden: [wipe]
escalation: {confidence_below: 0.6, to: humans}
"""


@tool(effect="read")
async def notify(to: str, text: str) -> str:
    return f"sent to {to}"


@tool(effect="read")
async def wipe() -> str:
    return "wiped"


async def logged_run(
    db: Database, *, record_content: bool = False
) -> tuple[list[dict[str, Any]], str, InMemorySpanExporter]:
    """One real run, traced and logged; returns the parsed lines, run id and spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traces = TraceConsumer(provider)
    out = io.StringIO()
    journal = Journal(db)
    journal.subscribe(traces)  # first, so each line sees its run's current span
    journal.subscribe(JsonLogConsumer(out, traces=traces, record_content=record_content))
    script = [
        calls(
            ("notify", {"to": "dana@example.com", "text": "refund ok"}),
            ("wipe", {}),
            usage=Usage(input_tokens=50, output_tokens=7),
        ),
        final("told dana@example.com"),
    ]
    loaded = load_spec_text(SPEC, "desk.yaml")
    agent = build_agent(loaded, [notify, wipe], model=ScriptedModel(script))
    try:
        result = await Runner(EmbeddedEngine(db, journal)).run(agent, "tell dana@example.com")
    finally:
        journal.close()  # joins the writer: every listener has seen every batch
    assert result.status is RunStatus.SUCCEEDED
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()], result.run_id, exporter


def by_event(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


async def test_one_json_line_per_event_with_ids_and_no_content(sqlite_db: Database) -> None:
    lines, run_id, exporter = await logged_run(sqlite_db)
    assert lines[0]["event"] == "run.started"
    assert lines[-1]["event"] == "run.finished"
    [run_span] = [s for s in exporter.get_finished_spans() if s.name == "invoke_agent desk"]
    trace_id = format_trace_id(run_span.context.trace_id)
    for line in lines:
        assert {"ts", "level", "event", "run_id", "agent", "trace_id"} <= set(line)
        assert (line["run_id"], line["agent"], line["trace_id"]) == (run_id, "desk", trace_id)
        assert line["ts"].endswith("Z")
        assert datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).tzinfo is not None
    model = by_event(lines, "model.responded")[0]
    assert (model["model"], model["input_tokens"], model["output_tokens"]) == ("scripted", 50, 7)
    assert model["tool_calls"] == ["notify", "wipe"] and model["latency_ms"] >= 0
    denied = [g for g in by_event(lines, "gate.decided") if g["verdict"] == "deny"]
    assert len(denied) == 1
    assert (denied[0]["tool"], denied[0]["reason_codes"]) == ("wipe", ["tool.forbidden"])
    assert denied[0]["level"] == "warning" and denied[0]["rule_ids"]
    [succeeded] = by_event(lines, "tool.succeeded")
    assert succeeded["tool"] == "notify" and succeeded["latency_ms"] >= 0
    assert lines[-1]["status"] == "succeeded" and lines[-1]["level"] == "info"
    text = json.dumps(lines)
    assert "dana@" not in text and "refund ok" not in text and "told" not in text
    for key in ("input", "output", "arguments", "result", "text"):
        assert all(key not in line for line in lines), key


async def test_content_when_enabled_is_redacted(sqlite_db: Database) -> None:
    lines, _, _ = await logged_run(sqlite_db, record_content=True)
    [started] = by_event(lines, "run.started")
    assert started["input"] == "tell [EMAIL]"
    proposed = {p["tool"]: p for p in by_event(lines, "tool.proposed")}
    assert proposed["notify"]["arguments"] == {"to": "[EMAIL]", "text": "refund ok"}
    [succeeded] = by_event(lines, "tool.succeeded")
    assert succeeded["result"] == "sent to [EMAIL]"
    assert lines[-1]["output"] == "told [EMAIL]"
    assert "dana@example.com" not in json.dumps(lines)


class Item:
    def __init__(self, run_id: str | None, ts: float, event: Any) -> None:
        self.run_id, self.ts, self.event = run_id, ts, event
        self.type = event_type(event)


def test_default_stream_is_stderr_and_levels_follow_outcomes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    consumer = JsonLogConsumer()
    consumer(
        [
            Item("run_a", 0.0, RunStarted("desk", "v1", "hi")),
            Item("run_a", 1.5, RunFinished(RunStatus.FAILED, reason_code="internal.error")),
            Item(
                "run_a",
                1.6,
                ToolFailed("k", "pay", "tool.timeout", "late", 1, True, on_timeout="left_running"),
            ),
        ]
    )
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    stamps = [line["ts"] for line in lines[:2]]
    assert stamps == ["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:01.500Z"]
    assert (lines[2]["level"], lines[2]["on_timeout"]) == ("error", "left_running")
    assert lines[1]["level"] == "error" and lines[1]["reason_code"] == "internal.error"
    assert lines[1]["agent"] == "desk" and lines[1]["trace_id"] is None
    assert "input" not in lines[0] and "reason" not in lines[1]


def test_a_broken_stream_is_counted_never_raised() -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    consumer = JsonLogConsumer(Full())
    consumer([Item("run_a", 0.0, RunStarted("desk", "v1", "hi"))])
    assert consumer.errors == 1 and "disk full" in consumer.last_error
