"""Install the telemetry consumers on a journal, configured by the environment.

- traces: OpenTelemetry over OTLP when OTEL_EXPORTER_OTLP(_TRACES)_ENDPOINT is set
  (OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc; OTEL_SDK_DISABLED=true turns it off);
- logs: one JSON line per event on stderr when STEWARD_LOG_JSON=1;
- metrics: always kept in a registry; written for a textfile collector when
  STEWARD_METRICS_TEXTFILE names a file, pushed when STEWARD_PUSHGATEWAY is a URL;
- budget alerts: posted to the spec's cost_controls.alert_webhook, or STEWARD_ALERT_WEBHOOK;
- content (messages, arguments, results) is recorded only with STEWARD_RECORD_CONTENT=1,
  and redacted even then;
- STEWARD_TELEMETRY=off leaves the journal without in-process consumers, for when
  `steward telemetry follow` consumes it from another process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from steward.store.journal import Journal
from steward.telemetry.alerts import WebhookAlerts
from steward.telemetry.logs import JsonLogConsumer
from steward.telemetry.metrics import MetricsConsumer, push, write_textfile
from steward.telemetry.otlp import build_tracer
from steward.telemetry.prebuilt import PrebuiltTracer
from steward.telemetry.stream import Consumer
from steward.telemetry.tracing import TraceConfig, TraceConsumer

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


@dataclass(slots=True)
class Telemetry:
    metrics: MetricsConsumer
    alerts: WebhookAlerts
    traces: TraceConsumer | None = None
    tracer: PrebuiltTracer | None = None
    logs: JsonLogConsumer | None = None
    textfile: str | None = None
    pushgateway: str | None = None
    problems: list[str] = field(default_factory=list)

    def consumers(self) -> list[Consumer]:
        found: list[Consumer | None] = [self.traces, self.logs, self.metrics, self.alerts]
        return [c for c in found if c is not None]

    def close(self) -> None:
        """After the journal has closed: end open spans, flush exporters, write metrics."""
        if self.traces is not None:
            self.traces.close()
        if self.tracer is not None:
            self.tracer.shutdown()  # flushes the batch span processor
        self.alerts.wait()
        if self.textfile:
            try:
                write_textfile(self.metrics.registry, self.textfile)
            except OSError as exc:
                self.problems.append(f"metrics textfile {self.textfile}: {exc.strerror or exc}")
        if self.pushgateway:
            try:
                push(self.metrics.registry, self.pushgateway, "steward")
            except OSError as exc:
                self.problems.append(f"metrics push to {self.pushgateway}: {exc}")


def build(registry: CollectorRegistry | None = None) -> Telemetry:
    """The configured consumers (traces before logs, so log lines carry trace ids).
    Raises ValueError for an unusable OTEL_* setting."""
    record = _flag("STEWARD_RECORD_CONTENT")
    config = TraceConfig(record_content=record)
    tracer = build_tracer(config)
    traces = TraceConsumer(tracer, config) if tracer is not None else None
    logs = (
        JsonLogConsumer(sys.stderr, traces=traces, record_content=record)
        if _flag("STEWARD_LOG_JSON")
        else None
    )
    return Telemetry(
        MetricsConsumer(registry),
        WebhookAlerts(os.environ.get("STEWARD_ALERT_WEBHOOK") or None),
        traces,
        tracer,
        logs,
        os.environ.get("STEWARD_METRICS_TEXTFILE") or None,
        os.environ.get("STEWARD_PUSHGATEWAY") or None,
    )


def install(journal: Journal, registry: CollectorRegistry | None = None) -> Telemetry | None:
    """Subscribe the configured consumers to `journal`, unless STEWARD_TELEMETRY=off (for
    example because a `steward telemetry follow` process consumes the journal instead)."""
    if os.environ.get("STEWARD_TELEMETRY", "").strip().lower() == "off":
        return None
    telemetry = build(registry)
    for consumer in telemetry.consumers():
        journal.subscribe(consumer)
    return telemetry
