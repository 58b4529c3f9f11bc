"""Each MCP request the gateway serves, as an OpenTelemetry span and as metrics.

Spans follow the OpenTelemetry semantic conventions for MCP: a SERVER span named
`{mcp.method.name} {target}` (`tools/call lookup_order`), with `mcp.method.name`,
`mcp.protocol.version`, `jsonrpc.request.id`, `gen_ai.operation.name` `execute_tool` and
`gen_ai.tool.name` for calls, `error.type` on failure, and the client's `traceparent`
(from `_meta`) as parent. steward adds what the gate did: `steward.run.id`,
`gen_ai.tool.call.id`, `steward.call.status`, `steward.approval.id`. The gate's own
`execute_tool` span (from the journal, telemetry/tracing.py) carries the same run and
call ids. Arguments and results are never span attributes here (redact by default).

Metrics: `steward_mcp_requests_total{method,status}` and
`steward_mcp_request_duration_seconds{method}`.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared._otel import extract_trace_context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, StatusCode, Tracer
from prometheus_client import CollectorRegistry, Counter, Histogram

_current: contextvars.ContextVar[Span] = contextvars.ContextVar(
    "steward_mcp_span", default=INVALID_SPAN
)


def annotate(**attributes: str | int | float | bool) -> None:
    """Add steward's attributes to the current MCP request's span (a no-op without one)."""
    span = _current.get()
    if span.is_recording():
        span.set_attributes({k.replace("__", "."): v for k, v in attributes.items()})


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "steward_mcp_requests", "MCP requests served by the gateway, by method and status",
            ["method", "status"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "steward_mcp_request_duration_seconds", "Time to answer an MCP request, by method",
            ["method"], registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0),
        )  # fmt: skip
        self._counts: dict[tuple[str, str], Any] = {}
        self._times: dict[str, Any] = {}

    def observe(self, method: str, status: str, seconds: float) -> None:
        """Count one request (the labelled children are looked up once per label set)."""
        count = self._counts.get((method, status))
        if count is None:
            count = self._counts[(method, status)] = self.requests.labels(method, status)
        count.inc()
        timer = self._times.get(method)
        if timer is None:
            timer = self._times[method] = self.duration.labels(method)
        timer.observe(seconds)


class McpSpans:
    """Context-tier middleware of the MCP SDK's Server: one span and one count per
    request. `tracer` is steward's (telemetry/otlp.py); None records metrics only."""

    def __init__(self, tracer: Tracer | None, metrics: GatewayMetrics) -> None:
        self.tracer = tracer
        self.metrics = metrics

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        method = ctx.method
        began = time.perf_counter()
        status = "ok"
        span: Span = INVALID_SPAN
        if self.tracer is not None and ctx.request_id is not None:
            name = ctx.params.get("name") if ctx.params else None
            target = name if isinstance(name, str) else None
            attributes: dict[str, Any] = {
                "mcp.method.name": method,
                "mcp.protocol.version": ctx.protocol_version,
                "jsonrpc.request.id": str(ctx.request_id),
                "network.transport": "tcp",
                "network.protocol.name": "http",
            }
            if method == "tools/call":
                attributes["gen_ai.operation.name"] = "execute_tool"
                if target is not None:
                    attributes["gen_ai.tool.name"] = target
            span = self.tracer.start_span(
                f"{method} {target}" if target else method,
                context=extract_trace_context(ctx.meta),
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
        token = _current.set(span)
        try:
            result = await call_next(ctx)
            if isinstance(result, dict) and result.get("isError") is True:
                status = "tool_error"
                span.set_attribute("error.type", "tool_error")
                span.set_status(StatusCode.ERROR)
            return result
        except Exception as exc:
            error = getattr(getattr(exc, "error", None), "code", None)
            status = str(error) if error is not None else type(exc).__qualname__
            span.set_attribute("error.type", status)
            span.set_status(StatusCode.ERROR, type(exc).__qualname__)
            raise
        finally:
            _current.reset(token)
            span.end()
            if ctx.request_id is not None:
                self.metrics.observe(method, status, time.perf_counter() - began)
