"""The gateway's side of bench_mcp.py: a toolset whose `echo` is the upstream MCP server's
`echo`, called over MCP (one stateless 2026-07-28 POST per call, a pooled connection)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import httpx2

import steward

ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "echo",
}


def tools() -> list[steward.Tool]:
    url = os.environ["BENCH_UPSTREAM"]
    client: list[httpx2.AsyncClient] = []
    ids = itertools.count()

    async def echo(text: str) -> Any:
        if not client:  # made in the gateway's event loop, on first use
            client.append(httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=64)))
        body = {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": text}, "_meta": ENVELOPE}}  # fmt: skip
        response = await client[0].post(url, json=body, headers=HEADERS)
        return response.json()["result"]["structuredContent"]

    def echo_local(text: str) -> Any:  # the same answer without the upstream hop
        return {"echo": text}

    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    return [
        steward.external_tool(
            "echo_local", echo_local, effect="read", idempotent=True, parameters=schema
        ),
        steward.external_tool(
            "echo",
            echo,
            effect="read",
            idempotent=True,
            description="Echo the text back.",
            parameters={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        ),
    ]
