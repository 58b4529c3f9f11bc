"""Many agents, one gate: governed delegation (README "Many agents: delegation").

An orchestrator agent lists `delegate.<agent>` / `handoff.<agent>` tools for the
specialists its spec's `orchestration.agents` names; each call goes through the gate
like any tool, and runs the specialist as a child run of the caller's run tree
(service.py). The run tree is on record (store/runs.py run_tree, ancestry).
"""

from steward.orchestration.service import (
    LOOP,
    MAX_HOPS,
    Delegator,
    child_run_id,
)

__all__ = ["LOOP", "MAX_HOPS", "Delegator", "child_run_id"]
