"""Rebuild the exact agent version a stored run was started with, to resume it."""

from __future__ import annotations

from steward.core.errors import StewardError
from steward.runtime.agent import AgentRuntime, build_agent
from steward.spec.loader import load_spec_text
from steward.spec.models import DELEGATION_PREFIXES, EXTERNAL, LoadedSpec
from steward.store.database import Database
from steward.store.runs import get_agent_version, get_run
from steward.tools.builtin import BUILTINS


def _from_mcp(loaded: LoadedSpec, name: str) -> bool:
    return name.partition(".")[0] in loaded.spec.mcp_servers


def _from_spec(loaded: LoadedSpec, name: str) -> bool:
    """Built from the spec itself: MCP servers' tools, delegations to other agents."""
    return _from_mcp(loaded, name) or name.startswith(DELEGATION_PREFIXES)


def _bound_in_code(loaded: LoadedSpec) -> bool:
    """Tools neither built in, from `toolsets`, nor from the spec's MCP servers: only the
    program that bound them can rebuild the agent."""
    return not loaded.spec.toolsets and any(
        name not in BUILTINS and not _from_spec(loaded, name) for name in loaded.spec.tools
    )


def stored_spec(db: Database, agent: str, version: str) -> LoadedSpec:
    """The spec of a stored agent version, with the prompt file it was saved with."""
    found = get_agent_version(db, agent, version)
    return load_spec_text(found.spec_text, f"{agent}@{version}", prompt_text=found.prompt_text)


def agent_for_run(db: Database, run_id: str) -> AgentRuntime:
    row = get_run(db, run_id)
    return agent_version(db, row.agent, row.agent_version)


def rebuildable(agent: AgentRuntime) -> bool:
    """Whether a process other than the one holding `agent` can rebuild it from its spec:
    its tools come from `toolsets` or are built in."""
    return not _bound_in_code(agent.loaded)


def agent_version(db: Database, agent: str, version: str) -> AgentRuntime:
    """The agent version on record, rebuilt (any process of the deployment can)."""
    loaded = stored_spec(db, agent, version)
    if loaded.spec.model.name == EXTERNAL:
        # its own program drives it (steward.Steward.attach); the runner only reports it
        return build_agent(loaded, unbound=True, db=db)
    if _bound_in_code(loaded):
        raise StewardError(
            f"agent {agent} binds its tools in code (no `toolsets` in its spec); "
            "resume the run from that program with Runner.resume()"
        )
    return build_agent(loaded, db=db)
