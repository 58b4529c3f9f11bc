"""The gateway's span per MCP request follows the OpenTelemetry MCP conventions and carries
what the gate did; its metrics count requests by method and status."""

from __future__ import annotations

from typing import Any, cast

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from steward.gateway.spans import GatewayMetrics, McpSpans, annotate

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _ctx(method: str, params: dict[str, Any] | None, request_id: int | None = 7) -> Any:
    from mcp.server.context import ServerRequestContext

    return ServerRequestContext(
        session=None,  # type: ignore[arg-type]  # the middleware never touches it
        lifespan_context={},
        protocol_version="2025-11-25",
        method=method,
        params=params,
        request_id=request_id,
        meta=cast(Any, {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}),
    )


async def test_a_tools_call_span_names_the_tool_the_run_and_the_outcome() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    spans = McpSpans(provider.get_tracer("test"), GatewayMetrics(registry))

    async def denied(ctx: Any) -> dict[str, Any]:
        annotate(
            steward__run__id="run_1", gen_ai__tool__call__id="mcp_x", steward__call__status="denied"
        )
        return {"content": [], "isError": True}

    async def listed(ctx: Any) -> dict[str, Any]:
        return {"tools": []}

    await spans(_ctx("tools/call", {"name": "wipe", "arguments": {"secret": "s3cr3t"}}), denied)
    await spans(_ctx("tools/list", {}), listed)
    call, listing = exporter.get_finished_spans()
    assert call.name == "tools/call wipe" and call.kind is SpanKind.SERVER
    attributes = dict(call.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["mcp.protocol.version"] == "2025-11-25"
    assert attributes["jsonrpc.request.id"] == "7"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "wipe"
    assert attributes["steward.run.id"] == "run_1"
    assert attributes["gen_ai.tool.call.id"] == "mcp_x"
    assert attributes["steward.call.status"] == "denied"
    assert attributes["error.type"] == "tool_error" and call.status.status_code is StatusCode.ERROR
    assert "s3cr3t" not in repr(attributes)  # arguments never become attributes
    assert format(call.context.trace_id, "032x") == TRACE  # the client's traceparent is the parent
    assert listing.name == "tools/list" and "gen_ai.tool.name" not in (listing.attributes or {})
    count = registry.get_sample_value
    assert (
        count("steward_mcp_requests_total", {"method": "tools/call", "status": "tool_error"}) == 1
    )
    assert count("steward_mcp_requests_total", {"method": "tools/list", "status": "ok"}) == 1
    assert count("steward_mcp_request_duration_seconds_count", {"method": "tools/call"}) == 1


async def test_without_a_tracer_requests_are_still_counted() -> None:
    registry = CollectorRegistry()
    spans = McpSpans(None, GatewayMetrics(registry))

    async def boom(ctx: Any) -> dict[str, Any]:
        raise RuntimeError("x")

    try:  # noqa: SIM105
        await spans(_ctx("tools/call", {"name": "echo"}), boom)
    except RuntimeError:
        pass
    value = registry.get_sample_value(
        "steward_mcp_requests_total", {"method": "tools/call", "status": "RuntimeError"}
    )
    assert value == 1
