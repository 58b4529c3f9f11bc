"""MCP servers as tools of a steward agent: the spec's `mcp_servers:` → `server.tool`
tools, pinned (store/mcp_pins.py), supervised (supervisor.py) and governed by the gate."""

from steward.mcp.hub import HUB, McpHub, stop_servers
from steward.mcp.tools import mcp_tools

__all__ = ["HUB", "McpHub", "mcp_tools", "stop_servers"]
