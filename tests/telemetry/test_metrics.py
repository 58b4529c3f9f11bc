"""Prometheus metrics folded from the committed event stream: driven by the real runner
over a SQLite journal, plus the consumer's edge cases and the three exposition paths."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from steward.core.decision import allow, deny
from steward.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalUsed,
    Event,
    GateDecided,
    ModelResponded,
    RunFinished,
    RunStarted,
    RunStatus,
    ToolSucceeded,
    event_type,
)
from steward.core.messages import ModelResponse, Usage
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval
from steward.telemetry.metrics import MetricsConsumer, push, render, write_textfile
from steward.telemetry.state import register_state
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: desk
model: scripted
tools: [lookup, refund, flaky]
decision_authority:
  autonomous: [lookup, flaky]
  requires_human_review: [refund]
limits: {max_steps: 5, max_run_seconds: 10}
escalation: {confidence_below: 0.6, to: humans}
"""


@tool(effect="read")
async def lookup(name: str) -> dict[str, str]:
    return {"name": name}


@tool(effect="write", keyed=True)
async def refund(order: str, amount: float) -> dict[str, Any]:
    return {"refunded": amount, "order": order}


@tool(effect="read")
async def flaky() -> str:
    raise ValueError("no such thing")


def desk(responses: list[ModelResponse], model: str = "house-model") -> Any:
    """`house-model` is not in the price table, so the usage's own cost_usd stands."""
    loaded = load_spec_text(SPEC, "desk.yaml")
    scripted = ScriptedModel(responses, name=model)
    return build_agent(loaded, [lookup, refund, flaky], model=scripted)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'steward.db'}")
    yield database
    database.close()


async def test_metrics_from_real_runs(db: Database) -> None:
    registry = CollectorRegistry()
    consumer = MetricsConsumer(registry)
    register_state(registry, db)  # in-flight gauges, read from the store when scraped
    m = registry

    journal = Journal(db)
    journal.subscribe(consumer)
    runner = Runner(EmbeddedEngine(db, journal))
    ok = await runner.run(
        desk(
            [
                calls(
                    ("lookup", {"name": "ann"}),
                    ("wipe_everything", {}),  # unlisted: denied
                    usage=Usage(cost_usd=0.25),
                ),
                ModelResponse("big-model", text="done", confidence=0.9, usage=Usage(cost_usd=0.5)),
            ]
        ),
        "who is ann?",
    )
    priced = final("unsure", 0.3, usage=Usage(input_tokens=2_000_000))  # $0.15 per M tokens
    unsure = await runner.run(desk([calls(("flaky", {})), priced], "gpt-4o-mini"), "hmm")
    refund_agent = desk([calls(("refund", {"order": "A1", "amount": 20.0})), final("ok", 0.8)])
    waiting = await runner.run(refund_agent, "refund A1")
    journal.close()  # joins the writer: every listener has run
    assert (ok.status, unsure.status, waiting.status) == (
        RunStatus.SUCCEEDED,
        RunStatus.ESCALATED,
        RunStatus.WAITING,
    )

    assert value(m, "agent_tasks_total", agent_name="desk", status="succeeded") == 1
    assert value(m, "agent_tasks_total", agent_name="desk", status="escalated") == 1
    assert value(m, "agent_tasks_total", agent_name="desk", status="waiting") == 1
    assert value(m, "agent_active_runs", agent_name="desk") == 0  # 0 after waiting too
    assert value(m, "agent_waiting_runs", agent_name="desk") == 1
    assert value(m, "agent_approvals_pending", agent_name="desk") == 1
    calls_total = "agent_tool_calls_total"
    assert value(m, calls_total, agent_name="desk", tool="lookup", outcome="executed") == 1
    assert value(m, calls_total, agent_name="desk", tool="wipe_everything", outcome="denied") == 1
    assert value(m, calls_total, agent_name="desk", tool="flaky", outcome="failed") == 1
    assert value(m, calls_total, agent_name="desk", tool="refund", outcome="waiting") == 1
    decisions = "agent_policy_decisions_total"
    assert value(m, decisions, agent_name="desk", verdict="deny", rule="default.unlisted") == 1
    review_rule = "decision_authority.requires_human_review.refund"
    assert value(m, decisions, agent_name="desk", verdict="review", rule=review_rule) == 1
    cost = "agent_cost_usd_total"  # a counter: rate() and increase() work
    assert f"# TYPE {cost} counter" in render(m).decode()
    assert value(m, cost, agent_name="desk", model="house-model") == pytest.approx(
        0.25
    )  # as reported
    assert value(m, cost, agent_name="desk", model="gpt-4o-mini") == pytest.approx(0.30)  # priced
    assert value(m, cost, agent_name="desk", model="big-model") == 0.5
    low = "escalation.low_confidence"
    assert value(m, "agent_escalations_total", agent_name="desk", reason=low) == 1
    assert value(m, "agent_model_confidence_count", agent_name="desk") == 2
    assert value(m, "agent_model_confidence_bucket", agent_name="desk", le="0.5") == 1

    # A person approves; the run resumes (in a new journal, as a CLI command would) and finishes.
    decide_approval(db, waiting.waiting_on[0], approve=True, by="alice")
    journal = Journal(db)
    journal.subscribe(consumer)
    done = await Runner(EmbeddedEngine(db, journal)).resume(refund_agent, waiting.run_id)
    journal.close()
    assert done.status is RunStatus.SUCCEEDED

    assert value(m, "agent_approvals_pending", agent_name="desk") == 0
    assert value(m, "agent_waiting_runs", agent_name="desk") == 0
    seconds = "agent_approval_decision_seconds"
    assert value(m, f"{seconds}_count", agent_name="desk", outcome="approved") == 1
    assert 0 <= value(m, f"{seconds}_sum", agent_name="desk", outcome="approved") < 10
    assert value(m, calls_total, agent_name="desk", tool="refund", outcome="executed") == 1
    assert value(m, decisions, agent_name="desk", verdict="allow", rule="approval") == 1
    assert value(m, "agent_tasks_total", agent_name="desk", status="succeeded") == 2
    assert value(m, "agent_active_runs", agent_name="desk") == 0
    assert value(m, "agent_model_confidence_count", agent_name="desk") == 3
    durations = "agent_task_duration_seconds_count"
    assert value(m, durations, agent_name="desk", tool="") == 4  # activations: 3 runs + 1 resume
    for name in ("lookup", "flaky", "refund"):
        assert value(m, durations, agent_name="desk", tool=name) == 1, name
    assert value(m, "steward_telemetry_errors_total", consumer="metrics", event="run.finished") == 0

    text = render(m).decode()
    assert "run_" not in text
    for run_id in (ok.run_id, unsure.run_id, waiting.run_id):
        assert run_id not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label_value in sample.labels.values():
                assert "run_" not in label_value and "apr_" not in label_value, sample


@dataclass(frozen=True)
class Item:
    """A committed event as the journal hands it over."""

    run_id: str | None
    ts: Any
    event: object
    type: str = "test"


def item(run_id: str | None, ts: Any, event: Event) -> Item:
    return Item(run_id, ts, event, event_type(event))


def test_bad_events_are_counted_never_raised() -> None:
    consumer = MetricsConsumer()
    bad_cost = ModelResponded(0, ModelResponse("m", usage=Usage(cost_usd=math.nan)), 1.0)
    consumer(
        [
            Item("run_a", 1.0, object()),  # not an event: ignored
            item("run_a", "not a time", RunStarted("desk", "v1", "hi")),
            item("run_a", 2.0, bad_cost),
            item(None, 3.0, RunStarted("desk", "v1", "hi")),
            item("run_b", 4.0, RunStarted("desk", "v1", "hi")),  # a good one still counts
            item("run_b", 5.0, RunFinished(RunStatus.SUCCEEDED, confidence=0.9)),
        ]
    )
    consumer(42)  # type: ignore[arg-type]
    errors = "steward_telemetry_errors_total"
    r = consumer.registry
    assert value(r, errors, consumer="metrics", event="run.started") == 2
    assert value(r, errors, consumer="metrics", event="model.responded") == 1
    assert value(r, errors, consumer="metrics", event="batch") == 1
    assert value(r, "agent_tasks_total", agent_name="desk", status="succeeded") == 1


def test_unknown_runs_count_as_unknown_and_never_go_negative() -> None:
    consumer = MetricsConsumer()
    consumer(
        [
            item("run_x", 1.0, ToolSucceeded("run_x:0:c", "lookup", {}, 5.0, 1)),
            item("run_x", 2.0, RunFinished(RunStatus.SUCCEEDED, confidence=0.9)),
            item("run_x", 3.0, ApprovalUsed("apr_never_seen", "k")),
        ]
    )
    r = consumer.registry
    calls_total = "agent_tool_calls_total"
    assert value(r, calls_total, agent_name="unknown", tool="lookup", outcome="executed") == 1
    assert value(r, "agent_tasks_total", agent_name="unknown", status="succeeded") == 1
    assert (
        r.get_sample_value(
            "agent_task_duration_seconds_count", {"agent_name": "unknown", "tool": ""}
        )
        is None
    )


def test_approval_decided_gives_the_exact_decision_time_once() -> None:
    consumer = MetricsConsumer()
    requested = ApprovalRequested("apr_1", "desk", "k1", "refund", {}, "h", 1e12, "review")
    consumer([item("run_1", 100.0, RunStarted("desk", "v1", "x")), item("run_1", 100.0, requested)])
    consumer([item("run_1", 160.0, ApprovalDecided("apr_1", "k1", "rejected", "bob"))])
    # on resume, the gate reports the rejection as well: already settled, not counted again
    rejected = deny("approval.rejected", "rejected by bob")
    consumer([item("run_1", 500.0, GateDecided("k1", "refund", "approval", rejected))])
    r = consumer.registry
    seconds = "agent_approval_decision_seconds"
    assert value(r, f"{seconds}_count", agent_name="desk", outcome="rejected") == 1
    assert value(r, f"{seconds}_sum", agent_name="desk", outcome="rejected") == 60
    calls_total = "agent_tool_calls_total"
    assert value(r, calls_total, agent_name="desk", tool="refund", outcome="denied") == 1


def test_label_values_are_capped_and_ids_never_become_labels() -> None:
    consumer = MetricsConsumer(max_label_values=3)
    batch = [item("run_1", 1.0, RunStarted("desk", "v1", "x"))]
    for index in range(6):
        batch.append(item("run_1", 2.0, ToolSucceeded(f"k{index}", f"tool{index}", {}, 1.0, 1)))
    granted = allow("approval.granted", "approved by alice", "approval.apr_0123456789abcdef")
    batch.append(item("run_1", 3.0, GateDecided("k9", "tool0", "approval", granted)))
    injected = "run_0123456789abcdef0123"
    batch.append(item("run_1", 3.0, ToolSucceeded("k10", injected, {}, 1.0, 1)))
    consumer(batch)
    r = consumer.registry
    calls_total = "agent_tool_calls_total"
    assert value(r, calls_total, agent_name="desk", tool="tool2", outcome="executed") == 1
    assert value(r, calls_total, agent_name="desk", tool="other", outcome="executed") == 4
    decisions = "agent_policy_decisions_total"
    assert value(r, decisions, agent_name="desk", verdict="allow", rule="approval") == 1
    assert "run_" not in render(r).decode() and "apr_" not in render(r).decode()


def test_textfile_is_written_atomically_and_parses(tmp_path: Path) -> None:
    consumer = MetricsConsumer()
    consumer([item("run_1", 1.0, RunStarted("desk", "v1", "x"))])
    consumer([item("run_1", 3.5, RunFinished(RunStatus.SUCCEEDED, confidence=0.7))])
    target = tmp_path / "textfile" / "steward.prom"
    write_textfile(consumer.registry, target)
    write_textfile(consumer.registry, target)  # replaces, leaves no temporary file behind
    assert [p.name for p in target.parent.iterdir()] == ["steward.prom"]
    families = {f.name: f for f in text_string_to_metric_families(target.read_text())}
    [tasks] = [s for s in families["agent_tasks"].samples if s.name == "agent_tasks_total"]
    assert tasks.labels == {"agent_name": "desk", "status": "succeeded"} and tasks.value == 1
    sums = [s for s in families["agent_task_duration_seconds"].samples if s.name.endswith("_sum")]
    assert [(s.labels["tool"], s.value) for s in sums] == [("", 2.5)]


class _Gateway(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_push_to_a_loopback_gateway() -> None:
    consumer = MetricsConsumer()
    consumer([item("run_1", 1.0, RunStarted("desk", "v1", "x"))])
    consumer([item("run_1", 2.0, RunFinished(RunStatus.ESCALATED, reason_code="limits.max_steps"))])
    _Gateway.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        port = server.server_address[1]
        push(consumer.registry, f"http://127.0.0.1:{port}", "steward-cli", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    [(method, path, body)] = _Gateway.seen
    assert (method, path) == ("PUT", "/metrics/job/steward-cli")
    text = body.decode()
    assert 'agent_escalations_total{agent_name="desk",reason="limits.max_steps"} 1.0' in text


def test_finished_runs_are_counted_per_version_label_and_canary_arm() -> None:
    """A canary is compared with its stable arm: each finished run counts under the
    version, label and arm its RunStarted recorded."""
    consumer = MetricsConsumer()
    consumer([item("run_1", 1.0, RunStarted("desk", "v1", "x", label="production", arm="stable"))])
    consumer([item("run_2", 1.0, RunStarted("desk", "v2", "x", label="production", arm="canary"))])
    consumer([item("run_3", 1.0, RunStarted("desk", "v1", "x"))])
    consumer([item("run_1", 2.0, RunFinished(RunStatus.SUCCEEDED))])
    consumer([item("run_2", 2.0, RunFinished(RunStatus.ESCALATED))])
    consumer([item("run_3", 2.0, RunFinished(RunStatus.SUCCEEDED))])
    r, name = consumer.registry, "agent_runs_by_version_total"
    common = {"agent_name": "desk", "label": "production"}
    assert value(r, name, agent_version="v1", arm="stable", status="succeeded", **common) == 1
    assert value(r, name, agent_version="v2", arm="canary", status="escalated", **common) == 1
    unlabelled = {"agent_name": "desk", "label": "none", "arm": "none"}
    assert value(r, name, agent_version="v1", status="succeeded", **unlabelled) == 1
