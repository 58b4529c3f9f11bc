"""Telemetry overhead: the same 20-step runs (one model call and one governed tool call a
step) with the telemetry consumers off; on in process (OpenTelemetry spans through a batch
processor exporting to memory, as to a collector, Prometheus metrics and budget alerts, all
fed from the journal); and on in a follower process reading the same journal. Rounds
alternate the modes so all see the same machine.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _common import Measurement, Report, main, sample_async, scaled
from bench_runner import STEPS, agent_with, governed_run, stepping_script
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner
from steward.store import Database, Journal
from steward.telemetry.alerts import WebhookAlerts
from steward.telemetry.metrics import MetricsConsumer
from steward.telemetry.prebuilt import PrebuiltTracer
from steward.telemetry.tracing import TraceConsumer

ROUNDS = 5


async def collect(quick: bool) -> Report:
    per_round = scaled(quick, 60, 8)
    report = Report("telemetry", "Telemetry overhead per step, off vs on", quick,
                    params={"steps_per_run": STEPS, "rounds": ROUNDS, "runs_per_round": per_round})  # fmt: skip
    agent = agent_with(stepping_script(STEPS))
    exporter = InMemorySpanExporter()
    provider = PrebuiltTracer([BatchSpanProcessor(exporter)])  # what `steward` installs
    off_samples: list[int] = []
    on_samples: list[int] = []
    sampled_samples: list[int] = []
    # for comparison: the OpenTelemetry SDK's own tracer, live spans
    sdk_provider = TracerProvider()
    sdk_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    followed_samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'b.db'}"
        db = Database.open(url)
        plain = Journal(db)
        observed = Journal(db)
        metrics = MetricsConsumer()
        for consumer in (TraceConsumer(provider), metrics, WebhookAlerts()):
            observed.subscribe(consumer)
        sampled_journal = Journal(db)
        for consumer in (TraceConsumer(sdk_provider), MetricsConsumer(), WebhookAlerts()):
            sampled_journal.subscribe(consumer)
        off, on, sampled = (
            Runner(EmbeddedEngine(db, plain)),
            Runner(EmbeddedEngine(db, observed)),
            Runner(EmbeddedEngine(db, sampled_journal)),
        )
        script = str(Path(__file__).with_name("_follow.py"))
        followed_events = followed_spans = 0
        try:
            for _ in range(ROUNDS):
                off_samples += await sample_async(lambda _i: governed_run(off, agent), per_round, 2)
                on_samples += await sample_async(lambda _i: governed_run(on, agent), per_round, 2)
                sampled_samples += await sample_async(
                    lambda _i: governed_run(sampled, agent), per_round, 2
                )
                # a follower process consumes the journal while these runs use the plain one
                follower = await asyncio.create_subprocess_exec(
                    sys.executable, script, url, stdout=asyncio.subprocess.PIPE
                )
                assert follower.stdout is not None
                await follower.stdout.readline()  # "ready"
                followed_samples += await sample_async(
                    lambda _i: governed_run(off, agent), per_round, 2
                )
                follower.send_signal(signal.SIGTERM)
                out, _ = await follower.communicate()
                events_seen, spans_seen = (int(x) for x in out.decode().split())
                followed_events += events_seen
                followed_spans += spans_seen
        finally:
            plain.close()
            observed.close()
            sampled_journal.close()
            provider.shutdown()
            sdk_provider.shutdown()
            db.close()
    baseline = report.add(Measurement("off", f"Runner.run, {STEPS} steps, telemetry off", off_samples,
                                      per_sample=STEPS, unit="step"))  # fmt: skip
    traced = report.add(Measurement("on", f"Runner.run, {STEPS} steps, traces + metrics + alerts", on_samples,
                                    per_sample=STEPS, unit="step",
                                    note=f"{len(exporter.get_finished_spans())} spans exported"))  # fmt: skip
    thinned = report.add(Measurement("sampled", f"Runner.run, {STEPS} steps, in process, the SDK's live spans",
                                     sampled_samples, per_sample=STEPS, unit="step"))  # fmt: skip
    followed = report.add(Measurement("follow", f"Runner.run, {STEPS} steps, telemetry in a follower process",
                                      followed_samples, per_sample=STEPS, unit="step",
                                      note=f"{followed_spans} spans from {followed_events} events"))  # fmt: skip
    added = traced.p50_us - baseline.p50_us
    report.figure("added_in_process", "added p50 per step, consumers in process", added, "µs",
                  "≤ 15 µs", added <= 15)  # fmt: skip
    report.figure("added_sdk", "added p50 per step, in process, SDK live spans", thinned.p50_us - baseline.p50_us,
                  "µs")  # fmt: skip
    away = followed.p50_us - baseline.p50_us
    report.figure("added_follower", "added p50 per step, consumers in a follower process", away, "µs",
                  "≤ 15 µs", away <= 15)  # fmt: skip
    report.figure("spans", "spans exported in process", float(len(exporter.get_finished_spans())))
    tasks = metrics.registry.get_sample_value(
        "agent_tasks_total", {"agent_name": "bench-runner", "status": "succeeded"}
    )
    report.figure(
        "runs_counted", "runs counted by the in-process metrics consumer", float(tasks or 0)
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
