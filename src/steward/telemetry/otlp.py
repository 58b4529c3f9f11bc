"""The OpenTelemetry SDK provider, configured by the standard OTEL_* environment."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from steward import __version__
from steward.telemetry.prebuilt import PrebuiltTracer
from steward.telemetry.tracing import TraceConfig


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def otlp_exporter() -> SpanExporter | None:
    """The OTLP span exporter the standard environment variables ask for, or None when
    the SDK is disabled or no endpoint is configured. The exporters read the endpoint,
    headers, timeout, compression and TLS settings from the environment themselves."""
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return None
    if not (_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = (
        _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    raise ValueError(f"OTLP protocol {protocol!r} is not supported: use 'http/protobuf' or 'grpc'")


def build_tracer_provider(config: TraceConfig | None = None) -> SdkTracerProvider | None:
    """An SDK TracerProvider batching spans to the configured OTLP exporter, or None when
    tracing is off (OTEL_SDK_DISABLED=true, or no OTLP endpoint in the environment).
    Raises ValueError for an unsupported OTEL_EXPORTER_OTLP_*PROTOCOL."""
    exporter = otlp_exporter()
    if exporter is None:
        return None
    name = (config.service_name if config else None) or _env("OTEL_SERVICE_NAME") or "steward"
    resource = Resource.create({"service.name": name, "service.version": __version__})
    provider = SdkTracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_tracer(config: TraceConfig | None = None) -> PrebuiltTracer | None:
    """What steward's trace consumer uses: the same exporter and batch processor as
    build_tracer_provider(), fed with prebuilt spans (see telemetry.prebuilt)."""
    exporter = otlp_exporter()
    if exporter is None:
        return None
    name = (config.service_name if config else None) or _env("OTEL_SERVICE_NAME") or "steward"
    resource = Resource.create({"service.name": name, "service.version": __version__})
    return PrebuiltTracer([BatchSpanProcessor(exporter)], resource, sampling_ratio())


def sampling_ratio() -> float:
    """OTEL_TRACES_SAMPLER traceidratio / parentbased_traceidratio with
    OTEL_TRACES_SAMPLER_ARG, as the SDK reads them; always_on (the default) is 1,
    always_off 0. Raises ValueError for another sampler or a bad ratio."""
    sampler = _env("OTEL_TRACES_SAMPLER").lower() or "parentbased_always_on"
    if sampler in {"always_on", "parentbased_always_on"}:
        return 1.0
    if sampler in {"always_off", "parentbased_always_off"}:
        return 0.0
    if sampler in {"traceidratio", "parentbased_traceidratio"}:
        try:
            ratio = float(_env("OTEL_TRACES_SAMPLER_ARG") or "1")
        except ValueError:
            raise ValueError("OTEL_TRACES_SAMPLER_ARG must be a number between 0 and 1") from None
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("OTEL_TRACES_SAMPLER_ARG must be between 0 and 1")
        return ratio
    raise ValueError(f"OTEL_TRACES_SAMPLER={sampler!r} is not supported here")
