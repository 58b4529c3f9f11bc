"""steward: run AI agents in production under governance.

Every action an agent proposes crosses one seam, the gate, where it is validated,
decided by policy, limited, budgeted, approved where policy says so, executed at most
once, scanned and recorded.

The public API is what this module exports (`__all__`): the facade that governs an
agent loop of your own (`open`, `Steward`, `Run`, the outcome values), plus the
packages `steward.adapters.*` (framework adapters) and `steward.testing` (test
helpers). Every other module (`steward.gate`, `steward.runtime`, `steward.store`, ...)
is internal: it may change in any release without notice. They are not renamed with
leading underscores on purpose: that would rewrite ~150 modules under every branch in
flight for no gain in safety; this docstring and the README state the boundary, and a
test keeps `__all__` and the README's API section in step.

    import steward

    async with steward.open("sqlite:///steward.db", specs="agents/") as st:
        run = await st.start_run("refund-agent", "refund order 10056", tools=[...])
        outcome = await run.call("issue_refund", {"order_id": "10056", "amount_usd": 40})
        await run.finish("refunded", confidence=0.9)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.core.errors import StewardError
    from steward.embed.external import external_tool
    from steward.embed.outcomes import (
        Allowed,
        Approved,
        Denied,
        Executed,
        Failed,
        Outcome,
        PersonDecision,
        Reason,
        Rejected,
        Verdict,
        Waiting,
    )
    from steward.embed.run import ModelCall, Run
    from steward.embed.steward import Steward, open
    from steward.runtime.runs import AgentDisabled
    from steward.runtime.spend import BudgetExhausted as BudgetExceeded
    from steward.tools.base import Effect, Tool, tool

# Loaded on first use (PEP 562): importing any steward module (steward.core.events in a
# telemetry follower, the CLI) must not load the whole runtime behind the facade.
_EXPORTS: dict[str, tuple[str, str]] = {
    "StewardError": ("steward.core.errors", "StewardError"),
    "external_tool": ("steward.embed.external", "external_tool"),
    **{
        name: ("steward.embed.outcomes", name)
        for name in (
            "Allowed",
            "Approved",
            "Denied",
            "Executed",
            "Failed",
            "Outcome",
            "PersonDecision",
            "Reason",
            "Rejected",
            "Verdict",
            "Waiting",
        )
    },
    "ModelCall": ("steward.embed.run", "ModelCall"),
    "Run": ("steward.embed.run", "Run"),
    "Steward": ("steward.embed.steward", "Steward"),
    "open": ("steward.embed.steward", "open"),
    "AgentDisabled": ("steward.runtime.runs", "AgentDisabled"),
    "BudgetExceeded": ("steward.runtime.spend", "BudgetExhausted"),
    "Effect": ("steward.tools.base", "Effect"),
    "Tool": ("steward.tools.base", "Tool"),
    "tool": ("steward.tools.base", "tool"),
}


def __getattr__(name: str) -> Any:
    found = _EXPORTS.get(name)
    if found is None:
        raise AttributeError(f"module 'steward' has no attribute {name!r}")
    value = getattr(importlib.import_module(found[0]), found[1])
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "AgentDisabled",
    "Allowed",
    "Approved",
    "BudgetExceeded",
    "Denied",
    "Effect",
    "Executed",
    "Failed",
    "ModelCall",
    "Outcome",
    "PersonDecision",
    "Reason",
    "Rejected",
    "Run",
    "Steward",
    "StewardError",
    "Tool",
    "Verdict",
    "Waiting",
    "__version__",
    "external_tool",
    "open",
    "tool",
]
