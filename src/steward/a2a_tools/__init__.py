"""Remote A2A agents as governed tools of a steward agent: each entry of a spec's
`a2a_agents` becomes the tool `a2a.<name>`, decided by policy, run only by the gate's
execute stage, its card pinned (store/mcp_pins.py) and its signature verified. Needs the
`a2a` extra."""

from __future__ import annotations

from steward.a2a_tools.tools import a2a_tools

__all__ = ["a2a_tools"]
