"""A trivial upstream MCP server for bench_mcp.py: one tool, `echo`, over streamable HTTP
(stateless, JSON responses), written with the official MCP SDK's low-level Server.
usage: python _mcp_upstream.py PORT"""

from __future__ import annotations

import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

ECHO = types.Tool(
    name="echo",
    description="Echo the text back.",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
)


async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[ECHO])


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = str((params.arguments or {}).get("text", ""))
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content={"echo": text}
    )


def app() -> Starlette:
    server: Server[Any] = Server("bench-upstream", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware = []  # no OpenTelemetry: the gateway's side has none either
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
    return Starlette(
        routes=[
            Route(
                "/mcp", endpoint=StreamableHTTPASGIApp(manager), methods=["GET", "POST", "DELETE"]
            ),
            Route("/livez", endpoint=lambda _: PlainTextResponse("ok")),
        ],
        lifespan=lambda _: manager.run(),
    )


if __name__ == "__main__":
    uvicorn.run(app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
