"""Delegation seen from the runtime: the tools `delegate.<agent>` and `handoff.<agent>`,
what a running activation knows of its run tree, and the service that runs a specialist
(a Protocol: steward/orchestration/ implements it over a deployment's agents).

A delegation is a tool call through the gate, so policy decides who may call whom with
which input. The tool function reaches the service of the run it serves through
`ACTIVATION` (a context variable the runner sets for each activation); with no service
(an engine that does not support delegation, such as Temporal), the call fails closed
with `delegation.unavailable`.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from steward.core.errors import ToolExecutionError
from steward.gate.budget import TreeCap
from steward.runtime.agent import AgentRuntime
from steward.runtime.executor import Executor
from steward.spec.models import DELEGATION_PREFIXES, LoadedSpec
from steward.tools.base import Effect, Tool, ToolContext, compile_validator

if TYPE_CHECKING:
    from steward.runtime.runner import Runner

UNAVAILABLE = "delegation.unavailable"
DEFAULT_MAX_HOPS = 3

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 20000,
                    "description": "what to ask the specialist agent"},
    },
    "required": ["message"],
    "additionalProperties": False,
}  # fmt: skip


def input_digest(text: str) -> str:
    """The SHA-256 of a normalised input (casefolded, whitespace collapsed): two
    delegations with this digest to one agent are the same visit (loop detection)."""
    return hashlib.sha256(" ".join(text.casefold().split()).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Tree:
    """What an activation knows of its run tree (in memory; a tree is always driven from
    its root, so each activation below is entered with it)."""

    root_run_id: str
    hop: int  # this run's depth below the root (root: 0)
    max_hops: int  # the root spec's orchestration.max_agent_hops
    fallback: str  # the root spec's orchestration.fallback
    visited: tuple[tuple[str, str], ...]  # (agent, input digest), root .. this run
    cap: TreeCap | None  # the root's per-run budget, held by every run below it
    root_input: str = ""  # the root's input (masked), for a fallback agent


def root_tree(agent: AgentRuntime, run_id: str, text: str) -> Tree:
    """The tree a root run starts, by its own spec. Only an agent with `orchestration`
    can delegate (spec/ refuses a delegation tool without it), so only its input is
    hashed for loop detection: SHA-256 of a long input costs ~0.1 ms a run."""
    spec = agent.loaded.spec
    orchestration = spec.orchestration
    cap = spec.cost_controls.max_cost_per_run_usd
    return Tree(
        root_run_id=run_id,
        hop=0,
        max_hops=orchestration.max_agent_hops if orchestration else DEFAULT_MAX_HOPS,
        fallback=orchestration.fallback if orchestration else "human",
        visited=((agent.name, input_digest(text)),) if orchestration else (),
        cap=TreeCap(run_id, cap) if cap is not None else None,
        root_input=text,
    )


@dataclass(frozen=True, slots=True)
class Delegated:
    """How a delegated run enters the runner: its place in the tree (recorded on its
    start) and the root user's own words (memory only, for provenance)."""

    parent_run_id: str
    parent_key: str
    tree: Tree
    typed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Activation:
    """The run a tool call serves, as a delegation tool sees it."""

    runner: Runner
    agent: AgentRuntime
    executor: Executor
    tree: Tree
    typed: tuple[str, ...]  # the root user's own words, for a specialist's provenance


ACTIVATION: ContextVar[Activation | None] = ContextVar("steward_activation", default=None)


class DelegationService(Protocol):
    """Runs a specialist for a delegation call: starts its child run (id from the parent
    run and the call key), or resumes/reads the one already started, and answers."""

    async def delegate(
        self, caller: Activation, target: str, message: str, key: str, *, handoff: bool
    ) -> Any:
        """The specialist's answer (the call's result); raises ToolWaits when the child
        waits on approvals, EndsRun when the call ends the caller's run (a handoff, a
        tree too deep or looping), ToolExecutionError when it may not be started."""
        ...


def _function(target: str, handoff: bool) -> Any:
    async def delegate(message: str, context: ToolContext) -> Any:
        caller = ACTIVATION.get()
        service = caller.runner.delegation if caller is not None else None
        if caller is None or service is None:
            raise ToolExecutionError(
                "delegation is not available here: the engine running this agent has no "
                "delegation service (Runner(engine, delegation=Delegator(...)))",
                code=UNAVAILABLE,
                retryable=False,
            )
        return await service.delegate(
            caller, target, message, context.idempotency_key, handoff=handoff
        )

    return delegate


def is_delegation(name: str) -> bool:
    return name.startswith(DELEGATION_PREFIXES)


def delegation_tools(loaded: LoadedSpec) -> list[Tool]:
    """The tools `delegate.<agent>` and `handoff.<agent>` the spec lists (or forbids). A
    keyed write: a resumed parent enters the same child run again, never a second one."""
    spec = loaded.spec
    tools: list[Tool] = []
    for name in dict.fromkeys((*spec.tools, *spec.decision_authority.forbidden)):
        if not is_delegation(name):
            continue
        kind, _, target = name.partition(".")
        handoff = kind == "handoff"
        about = (
            f"Hand the conversation to the agent {target}: it takes over and its answer ends "
            "this run."
            if handoff
            else f"Ask the agent {target} and get its answer back, then carry on."
        )
        tools.append(Tool(
            name=name, description=about, parameters=PARAMETERS,
            function=_function(target, handoff), effect=Effect.WRITE,
            validator=compile_validator(PARAMETERS), keyed=True, is_async=True,
            context_param="context", timeout=spec.limits.max_run_seconds,
        ))  # fmt: skip
    return tools
