"""The delegation service: runs a specialist for a `delegate.<agent>` / `handoff.<agent>`
call (the tools are runtime/delegation.py's; the gate has decided the call already).

The specialist's run is a child run: its id is a function of the parent run and the call
key, so a resumed parent enters the same child again (resumes it, or reads its ending)
and never starts a second one. The child is started for the person who started the root
(the parent's tags, `started_by` included: four eyes holds across the tree), with the
root user's own words as its "user" for provenance, and its spend held on the root's
per-run budget too (runtime/runner.py sets that for the activation).

What the call returns:
  the child finished         delegate: {"agent", "run_id", "status", "answer", ...} as
                             the call's result (scanned like any tool result);
                             handoff: the same, and the child's ending ends the caller
  the child waits (review)   the call waits on the child's approvals (ToolWaits): the
                             whole tree pauses, and a decision resumes the root
  too deep, or a loop        not started; the tree ends in the root's fallback:
                             `human` -> escalated with `delegation.max_agent_hops` /
                             `delegation.loop`; an agent -> handed off to it at the root
  disabled specialist        refused, `agent.disabled`; one disabled while it runs stops
                             at its next step, escalated with `agent.disabled` (runtime/
                             runner.py): that ending is the call's answer, and the
                             caller goes on
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from steward.core.errors import NotFoundError, ToolExecutionError
from steward.core.events import RunEnding, RunStatus
from steward.engines.catalog import agent_version
from steward.engines.labelled import labelled_version
from steward.gate.outcome import EndsRun, ToolWaits
from steward.runtime.agent import AgentRuntime
from steward.runtime.delegation import Activation, Delegated, Tree, input_digest
from steward.runtime.runner import RunResult
from steward.runtime.runs import AgentDisabled, mask_input
from steward.store.database import Database
from steward.store.runs import RunRow, get_run, latest_agent_versions

MAX_HOPS = "delegation.max_agent_hops"
LOOP = "delegation.loop"
UNKNOWN_AGENT = "delegation.unknown_agent"
BUSY = "delegation.child_busy"
TREE_ENDINGS = frozenset({MAX_HOPS, LOOP})  # a tree that ends so ends whole, in its fallback

Agents = Mapping[str, AgentRuntime] | Callable[[str], AgentRuntime | None]


def child_run_id(parent_run_id: str, key: str) -> str:
    """The run a delegation call starts: the same for the same parent and call key."""
    return "run_" + hashlib.sha256(f"{parent_run_id}\n{key}".encode()).hexdigest()[:20]


class Delegator:
    """Delegation over one deployment's agents (by name) and its database:
    `Runner(engine, delegation=Delegator(agents, db))`. `agents` None: agents rebuilt
    from their stored specs (a CLI that resumes a tree, a temporal worker), each at the
    version its `default_label` points at (as a server chooses a specialist), else its
    newest version on record."""

    def __init__(
        self, agents: Agents | None, db: Database, default_label: str = "production"
    ) -> None:
        self._agents = agents
        self.db = db
        self.default_label = default_label
        self._stored: dict[tuple[str, str], AgentRuntime] = {}

    def _from_store(self, name: str) -> AgentRuntime | None:
        # the canary arm keyed by the agent's name, as RunService._specialist chooses it
        pointed = labelled_version(self.db, name, self.default_label, name)
        if pointed is not None:
            version = pointed[0]
        else:
            newest = latest_agent_versions(self.db).get(name)
            if newest is None:
                return None
            version = newest.version
        key = (name, version)
        if key not in self._stored:
            self._stored[key] = agent_version(self.db, name, version)
        return self._stored[key]

    def resolve(self, name: str) -> AgentRuntime:
        if self._agents is None:
            found = self._from_store(name)
        elif callable(self._agents):
            found = self._agents(name)
        else:
            found = self._agents.get(name)
        if found is None:
            raise ToolExecutionError(
                f"no agent named {name} in this deployment", code=UNKNOWN_AGENT, retryable=False
            )
        return found

    async def _resolved(self, name: str) -> AgentRuntime:
        """`resolve`, off the event loop when it reads the store."""
        if self._agents is None:
            return await asyncio.to_thread(self.resolve, name)
        return self.resolve(name)

    async def delegate(
        self, caller: Activation, target: str, message: str, key: str, *, handoff: bool
    ) -> Any:
        child_id = child_run_id(caller.executor.run_id, key)
        try:
            # off the event loop: on PostgreSQL a read is a round trip, and other trees wait
            row: RunRow | None = await asyncio.to_thread(get_run, self.db, child_id)
        except NotFoundError:
            row = None
        masked, _ = mask_input(message)
        tree = caller.tree
        child_tree = Tree(
            tree.root_run_id,
            tree.hop + 1,
            tree.max_hops,
            tree.fallback,
            (*tree.visited, (target, input_digest(masked))),
            tree.cap,
            tree.root_input,
        )
        delegated = Delegated(caller.executor.run_id, key, child_tree, caller.typed)
        if row is None:
            refused = _refusal(tree, target, masked)
            if refused is not None:
                return await self._tree_ends(caller, key, *refused)
            result = await self._start(caller, target, message, child_id, delegated)
        else:
            result = await self._continue(caller, row, child_id, delegated)
        return await self._answer(caller, key, target, result, handoff=handoff)

    async def _start(
        self, caller: Activation, target: str, message: str, child_id: str, delegated: Delegated
    ) -> RunResult:
        agent = await self._resolved(target)
        try:
            return await caller.runner.run(
                agent, message, run_id=child_id, tags=dict(caller.executor.tags),
                delegated=delegated,
            )  # fmt: skip
        except AgentDisabled as exc:
            raise ToolExecutionError(str(exc), code=exc.code, retryable=False) from None

    async def _continue(
        self, caller: Activation, row: RunRow, child_id: str, delegated: Delegated
    ) -> RunResult:
        """The child started already (a resumed parent): its ending, or drive it on."""
        if row.finished_at is not None:
            return RunResult(
                child_id, RunStatus(row.status), row.output, row.confidence,
                row.reason_code, row.reason, row.steps,
            )  # fmt: skip
        agent = await self._resolved(row.agent)
        if agent.version != row.agent_version:  # deployed anew since: the version it began
            agent = await asyncio.to_thread(agent_version, self.db, row.agent, row.agent_version)
        return await caller.runner.resume(
            agent, child_id, "resumed by its parent", delegated=delegated
        )

    async def _answer(
        self, caller: Activation, key: str, target: str, result: RunResult, *, handoff: bool
    ) -> Any:
        if result.status is RunStatus.WAITING:
            raise ToolWaits(result.waiting_on, f"{target} waits for approval")
        if result.status in (RunStatus.QUEUED, RunStatus.RUNNING):  # driven elsewhere now
            raise ToolExecutionError(
                f"run {result.run_id} of {target} is {result.status.value} in another "
                "activation; asked again shortly",
                code=BUSY,
            )
        if result.reason_code in TREE_ENDINGS:  # below, the tree went too deep or looped
            return await self._tree_ends(caller, key, result.reason_code, result.reason)
        answer = {
            "agent": target,
            "run_id": result.run_id,
            "status": result.status.value,
            "answer": result.output,
            "reason_code": result.reason_code,
        }
        if handoff:
            ending = RunEnding(result.status, result.output, result.reason_code, result.reason)
            raise EndsRun(ending, result=answer)
        return answer

    async def _tree_ends(self, caller: Activation, key: str, code: str, reason: str) -> Any:
        """The tree ends in its fallback: at the root, a fallback agent takes over (a
        handoff); anywhere else, or with `human`, the run ends escalated with the reason,
        and so on up to the root."""
        tree = caller.tree
        if tree.hop == 0 and tree.fallback != "human" and not key.endswith(_FALLBACK):
            return await self.delegate(
                caller, tree.fallback, tree.root_input, key + _FALLBACK, handoff=True
            )
        ending = RunEnding(RunStatus.ESCALATED, "", code, reason)
        raise EndsRun(ending, code=code, message=reason)


_FALLBACK = ":fallback"


def _refusal(tree: Tree, target: str, masked: str) -> tuple[str, str] | None:
    """Why a delegation may not start: too deep, or a loop (same agent, same input,
    anywhere from the root down to the caller)."""
    if tree.hop + 1 > tree.max_hops:
        return MAX_HOPS, (
            f"delegating to {target} would make the run tree {tree.hop + 1} hops deep; "
            f"the root allows max_agent_hops={tree.max_hops}"
        )
    if (target, input_digest(masked)) in tree.visited:
        return LOOP, (
            f"{target} was already asked the same thing in this run tree "
            f"(root {tree.root_run_id}): a delegation loop"
        )
    return None
