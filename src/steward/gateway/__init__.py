"""The governed MCP gateway: MCP clients (Claude Desktop, Cursor, any MCP SDK) list and
call the tools of the agent spec their identity selects, over streamable HTTP at `/mcp`;
every `tools/call` crosses the gate through the public facade (`steward.open`).

Needs the `mcp` extra (the official MCP SDK 2.x): `pip install 'steward-governance[mcp]'`.
"""

from __future__ import annotations

from steward.gateway.config import GatewayConfig, JwtIssuer

__all__ = ["GatewayConfig", "JwtIssuer"]
