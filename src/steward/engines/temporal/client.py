"""Start, follow, signal and cancel runs on Temporal: what the server, the CLI and the
demo use in place of an in-process runner when the engine is `temporal`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from steward.core.errors import StewardError
from steward.core.events import RunFinished, RunQueued, RunStatus
from steward.core.faults import crashpoint
from steward.engines.catalog import rebuildable
from steward.engines.embedded import EmbeddedEngine, EmbeddedStore
from steward.engines.temporal import DEFAULT_ADDRESS, TASK_QUEUE
from steward.engines.temporal.shapes import Activation, CancelRequest, RunStart
from steward.engines.temporal.workflow import RunWorkflow
from steward.gate.shared import shared_gate_state
from steward.runtime.agent import AgentRuntime
from steward.runtime.runner import RunResult, new_run_id
from steward.runtime.runs import VersionMemory, check_enabled, mask_input
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import RunRow, root_of


def run_result(done: Activation) -> RunResult:
    return RunResult(
        done.run_id, RunStatus(done.status), done.output, done.confidence, done.reason_code,
        done.reason, done.steps, tuple(done.waiting_on), tuple(done.denials), done.seconds,
    )  # fmt: skip


async def connect(address: str = DEFAULT_ADDRESS, namespace: str = "default") -> Client:
    try:
        return await Client.connect(address, namespace=namespace)
    except RuntimeError as exc:
        raise StewardError(
            f"cannot reach Temporal at {address}: {exc}", code="engine.unreachable"
        ) from exc


@dataclass
class TemporalRuns:
    """Runs of one deployment on one Temporal namespace and task queue."""

    client: Client
    db: Database
    journal: Journal
    task_queue: str = TASK_QUEUE

    def __post_init__(self) -> None:
        self._engine = EmbeddedEngine(self.db, self.journal)
        self._versions = VersionMemory(EmbeddedStore(self.db, self.journal))
        self._states = shared_gate_state(self.db).states

    async def start(
        self,
        agent: AgentRuntime,
        text: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        label: str = "",
        arm: str = "",
    ) -> str:
        """Put the run on record, queued, then start its workflow; a worker takes it from
        the queue and drives it. `label` and `arm`: what chose this agent version
        (engines/labelled.py), put on the run's record. Raises AgentDisabled, and
        StewardError for an agent no worker could rebuild (tools bound in code) or when
        Temporal does not take the workflow (the run is then on record as failed).

        The run is on record before anyone is told it exists, whether or not a worker is
        up: a server answers with the run, never "not found" for a run it accepted.
        A process that dies between the two steps leaves a queued run without a
        workflow; `adopt` (a server's recovery) starts it."""
        if not rebuildable(agent):
            raise StewardError(
                f"agent {agent.name} binds its tools in code (no `toolsets` in its spec); "
                "a worker of the temporal engine cannot rebuild it",
                code="engine.agent_not_rebuildable",
            )
        check_enabled(self._states, agent.name)
        self._versions.remember(agent)  # the spec text on record, for every worker
        run_id = run_id or new_run_id()
        masked, kinds = mask_input(text)
        executor = self._engine.executor(run_id, agent.name, agent.version)
        executor.emit(
            RunQueued(agent.name, agent.version, masked, dict(tags or {}), kinds, label, arm)
        )
        await executor.durable()
        crashpoint("run.queued")  # crash tests: on record, its workflow not started
        start = RunStart(
            run_id, agent.name, agent.version, masked, dict(tags or {}),
            agent.loaded.spec.limits.max_run_seconds, label, arm,
        )  # fmt: skip
        try:
            await self._start_workflow(start)
        except Exception as exc:
            executor.emit(
                RunFinished(RunStatus.FAILED, reason_code="engine.unreachable",
                            reason=f"Temporal did not take the run's workflow: {exc}")
            )  # fmt: skip
            await executor.durable()
            raise StewardError(
                f"Temporal did not take run {run_id}: {exc}", code="engine.unreachable"
            ) from exc
        return run_id

    async def adopt(self, agent: AgentRuntime, row: RunRow) -> bool:
        """Start the workflow of a queued run whose starter died before it could (a no-op
        when the workflow exists); True if this call started it."""
        start = RunStart(
            row.id, row.agent, row.agent_version, row.input, dict(row.tags),
            agent.loaded.spec.limits.max_run_seconds, row.label, row.arm,
        )  # fmt: skip
        return await self._start_workflow(start)

    async def _start_workflow(self, start: RunStart) -> bool:
        """Start the run's workflow; False if it was started already (by another replica
        adopting the run, or a retried start that reached the server)."""
        try:
            await self.client.start_workflow(
                RunWorkflow.run,
                start,
                id=start.run_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    def handle(self, run_id: str) -> WorkflowHandle[RunWorkflow, Activation]:
        return self.client.get_workflow_handle_for(RunWorkflow.run, run_id)

    async def settled(self, run_id: str, after: int = 0) -> RunResult:
        """The outcome of the run's activation after the `after`th: finished or waiting."""
        handle = self.client.get_workflow_handle(run_id)
        try:
            done: Activation = await handle.execute_update("settled", after, result_type=Activation)
        except (RPCError, WorkflowUpdateFailedError):  # it closed: ask its record instead
            found: list[Activation] = await handle.query(
                "activation", after, result_type=list[Activation]
            )
            if not found:
                raise
            done = found[0]
        return run_result(done)

    async def run(
        self, agent: AgentRuntime, text: str, *, tags: dict[str, str] | None = None
    ) -> RunResult:
        """Like Runner.run: start the run and return once it finishes or waits."""
        return await self.settled(await self.start(agent, text, tags=tags))

    async def _root(self, run_id: str) -> str:
        """The run whose workflow drives `run_id`: its tree's root (a delegated run has
        no workflow of its own; its root's activations enter it)."""
        return await asyncio.to_thread(root_of, self.db, run_id)

    async def decided(self, run_id: str, why: str) -> None:
        """A decision was recorded: the run's workflow (its root's) drives it on
        (ApprovalService's `resume`)."""
        await self.handle(await self._root(run_id)).signal(RunWorkflow.decided, why)

    async def activations(self, run_id: str) -> int:
        return await self.handle(run_id).query(RunWorkflow.activations)

    async def cancel(self, run_id: str, *, by: str, reason: str) -> None:
        """Cancel the run's tree: its root's workflow, which cancels every run below it."""
        root = await self._root(run_id)
        handle = self.handle(root)
        await handle.signal(RunWorkflow.cancelling, CancelRequest(root, by, reason))
        await handle.cancel()
