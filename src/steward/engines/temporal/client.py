"""Start, follow, signal and cancel runs on Temporal: what the server, the CLI and the
demo use in place of an in-process runner when the engine is `temporal`."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from steward.core.errors import StewardError
from steward.core.events import RunStatus
from steward.engines.catalog import rebuildable
from steward.engines.embedded import EmbeddedStore
from steward.engines.temporal import DEFAULT_ADDRESS, TASK_QUEUE
from steward.engines.temporal.shapes import Activation, CancelRequest, RunStart
from steward.engines.temporal.workflow import RunWorkflow
from steward.gate.shared import shared_gate_state
from steward.runtime.agent import AgentRuntime
from steward.runtime.runner import RunResult, new_run_id
from steward.runtime.runs import VersionMemory, check_enabled, mask_input
from steward.store.database import Database
from steward.store.journal import Journal


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
        """Start the run's workflow; a worker drives it. `label` and `arm`: what chose
        this agent version (engines/labelled.py), put on the run's record. Raises AgentDisabled, and
        StewardError for an agent no worker could rebuild (tools bound in code)."""
        if not rebuildable(agent):
            raise StewardError(
                f"agent {agent.name} binds its tools in code (no `toolsets` in its spec); "
                "a worker of the temporal engine cannot rebuild it",
                code="engine.agent_not_rebuildable",
            )
        check_enabled(self._states, agent.name)
        self._versions.remember(agent)  # the spec text on record, for every worker
        run_id = run_id or new_run_id()
        masked, _ = mask_input(text)
        start = RunStart(
            run_id, agent.name, agent.version, masked, dict(tags or {}),
            agent.loaded.spec.limits.max_run_seconds, label, arm,
        )  # fmt: skip
        await self.client.start_workflow(
            RunWorkflow.run,
            start,
            id=run_id,
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        return run_id

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

    async def decided(self, run_id: str, why: str) -> None:
        """A decision was recorded: the run's workflow drives it on (ApprovalService's
        `resume`)."""
        await self.handle(run_id).signal(RunWorkflow.decided, why)

    async def activations(self, run_id: str) -> int:
        return await self.handle(run_id).query(RunWorkflow.activations)

    async def cancel(self, run_id: str, *, by: str, reason: str) -> None:
        handle = self.handle(run_id)
        await handle.signal(RunWorkflow.cancelling, CancelRequest(run_id, by, reason))
        await handle.cancel()
