"""Helper process for bench_telemetry: follow a journal with the same consumers the
in-process mode uses (spans to memory through a batch processor, metrics, alerts) until
SIGTERM, then print how many events and spans it handled."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from steward.store import Database
from steward.telemetry.alerts import WebhookAlerts
from steward.telemetry.follower import Follower
from steward.telemetry.metrics import MetricsConsumer
from steward.telemetry.prebuilt import PrebuiltTracer
from steward.telemetry.tracing import TraceConsumer


def main(url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = PrebuiltTracer([BatchSpanProcessor(exporter)])
    follower = Follower(
        Database.open(url), [TraceConsumer(provider), MetricsConsumer(), WebhookAlerts()]
    )
    stop = threading.Event()

    def on_term(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    follower.run(stop, 0.005)
    provider.shutdown()
    print(follower.delivered, len(exporter.get_finished_spans()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
