"""What a caller sees in `tools/list`: the tools of its agent's catalog that the policy
allows before any arguments are seen. Unlisted, forbidden and unbound tools are absent;
tools a person must approve are present and marked (description, `_meta`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types

from steward.core.decision import Verdict
from steward.embed.external import is_decide_only
from steward.runtime.agent import AgentRuntime
from steward.tools.base import Effect, Tool

META = "steward.dev/decision"  # the `_meta` key of a listed tool's standing decision
REVIEW_NOTE = "[steward: each call waits for a person's approval] "


@dataclass(frozen=True, slots=True)
class Listed:
    tool: Tool
    review: bool  # every call needs a person's approval
    conditional: bool  # argument conditions may change the decision of a call


def visible_tools(agent: AgentRuntime) -> list[Listed]:
    """The agent's listed, bound tools whose standing decision is allow or review."""
    found: list[Listed] = []
    for name in agent.loaded.spec.tools:
        tool = agent.tools.get(name)
        if tool is None or is_decide_only(tool):
            continue  # no implementation here: nothing the gateway could run
        decision, conditional = agent.policy.standing(name)
        if decision.verdict is Verdict.DENY:
            continue
        found.append(Listed(tool, decision.verdict is Verdict.REVIEW, conditional))
    return found


def mcp_tool(listed: Listed) -> types.Tool:
    tool = listed.tool
    tier = "requires_human_review" if listed.review else "autonomous"
    meta: dict[str, Any] = {META: {"tier": tier, "conditional": listed.conditional}}
    description = tool.description or tool.name
    if listed.review:
        description = REVIEW_NOTE + description
    schema = dict(tool.parameters) if tool.parameters else {}
    schema.setdefault("type", "object")
    read = tool.effect is Effect.READ
    annotations = types.ToolAnnotations(
        read_only_hint=read,
        destructive_hint=None if read else True,
        idempotent_hint=tool.idempotent or None,
    )
    return types.Tool(
        name=tool.name,
        description=description,
        input_schema=schema,
        annotations=annotations,
        meta=meta,
    )


class Catalogs:
    """The listing of each agent version, built once (a spec version never changes)."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, str], list[types.Tool]] = {}

    def listing(self, agent: AgentRuntime) -> list[types.Tool]:
        key = (agent.name, agent.version)
        found = self._lists.get(key)
        if found is None:
            found = self._lists[key] = [mcp_tool(item) for item in visible_tools(agent)]
        return found
