"""Rebuild the exact agent version a stored run was started with, to resume it."""

from __future__ import annotations

from steward.core.errors import StewardError
from steward.runtime.agent import AgentRuntime, build_agent
from steward.spec.loader import load_spec_text
from steward.spec.models import EXTERNAL, LoadedSpec
from steward.store.database import Database
from steward.store.runs import get_agent_version_text, get_run
from steward.tools.builtin import BUILTINS


def _from_mcp(loaded: LoadedSpec, name: str) -> bool:
    return name.partition(".")[0] in loaded.spec.mcp_servers


def agent_for_run(db: Database, run_id: str) -> AgentRuntime:
    row = get_run(db, run_id)
    text = get_agent_version_text(db, row.agent, row.agent_version)
    loaded = load_spec_text(text, f"{row.agent}@{row.agent_version}")
    if loaded.spec.model.name == EXTERNAL:
        # its own program drives it (steward.Steward.attach); the runner only reports it
        return build_agent(loaded, unbound=True, db=db)
    if not loaded.spec.toolsets and any(
        name not in BUILTINS and not _from_mcp(loaded, name) for name in loaded.spec.tools
    ):
        raise StewardError(
            f"agent {row.agent} binds its tools in code (no `toolsets` in its spec); "
            "resume the run from that program with Runner.resume()"
        )
    return build_agent(loaded, db=db)
