"""The run's activities, run by workers: an activation of steward's loop, expiring
overdue approvals, cancelling, and ending an activation the durable timer cut short.

An activation drives the one runner (runtime/runner.py) over the embedded executor, so
events, write-ahead intents and the audit chain are steward's journal's, as on one
machine. A retry (the worker died: no heartbeat) resumes the run from that journal:
recorded model turns and calls replay, a keyed call retries under its key, an unkeyed
write whose intent has no result is `outcome unknown` for a person. Never run twice.

A run tree (delegation) is driven by its root's workflow alone: a `delegate.*` call runs
the specialist's child run inline, inside its parent's activation (the worker's runner
has a Delegator over the agent versions on record), so a child has no workflow of its
own. A child waiting on a person makes the root's activation end `waiting` on the
child's approvals; the root's timer expires them (`expire` takes the tree's requests),
a decision signals the root (TemporalRuns.decided), and the root's next activation
enters the same child again. Cancelling the root cancels its tree (`cancel`).

The model's text, as it streams, goes to the followers of the run's stream on any
server over the token relay (store/token_relay.py, PostgreSQL), as a replica's does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from steward.core.errors import ConflictError, NotFoundError, StewardError, StoreError
from steward.core.events import RunFinished, RunStatus
from steward.core.lifecycle import SHUTDOWN
from steward.engines.cancel import cancel_tree
from steward.engines.catalog import agent_version
from steward.engines.embedded import EmbeddedEngine
from steward.engines.temporal.shapes import Activation, CancelRequest, Drive, RunStart
from steward.engines.temporal.workflow import CANCEL, DRIVE, EXPIRE, HEARTBEAT, TIMED_OUT
from steward.orchestration.service import Delegator
from steward.runtime.agent import AgentRuntime
from steward.runtime.runner import RESUMED_ELSEWHERE, Runner, RunResult
from steward.store.approvals import expire_approval, get_approval, overdue_approvals
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import RunRow, get_run, run_tree
from steward.store.token_relay import TokenRelay

CANCELLED = "run.cancelled"


def activation(result: RunResult, expires_at: float | None = None) -> Activation:
    return Activation(
        result.run_id, result.status.value, result.output, result.confidence,
        result.reason_code, result.reason, result.steps, list(result.waiting_on),
        list(result.denials), result.seconds, expires_at,
    )  # fmt: skip


def _of_row(row: RunRow) -> Activation:
    return Activation(
        row.id, row.status, row.output, row.confidence, row.reason_code, row.reason, row.steps
    )


class RunActivities:
    """One per worker process: its runner over the deployment's database and journal."""

    def __init__(
        self,
        db: Database,
        journal: Journal,
        label: str = "production",
        relay: TokenRelay | None = None,
    ) -> None:
        """`relay`: where the model's text chunks go, for followers on the servers."""
        self.db = db
        self.journal = journal
        self.relay = relay
        self.engine = EmbeddedEngine(db, journal)
        # delegate.* / handoff.* calls: the specialist version `label` points at, else
        # its newest on record
        self.runner = Runner(self.engine, delegation=Delegator(None, db, label))
        self._agents: dict[tuple[str, str], AgentRuntime] = {}

    def all(self) -> list[Callable[..., Awaitable[Activation | None]]]:
        return [self.drive, self.expire, self.cancel, self.timed_out]

    def _agent(self, name: str, version: str) -> AgentRuntime:
        found = self._agents.get((name, version))
        if found is None:
            found = self._agents[(name, version)] = agent_version(self.db, name, version)
        return found

    @activity.defn(name=DRIVE)
    async def drive(self, order: Drive) -> Activation:
        start = order.start
        task = asyncio.create_task(self._activate(start, order.reason))
        beat = asyncio.create_task(_heartbeat())
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            # Whatever the cause (the workflow was cancelled, the worker stops, the timer
            # ran out), this activation stops as a stopping process would: what it recorded
            # stays, nothing is ended here. A cancelled workflow records the cancellation
            # next, with who and why (CANCEL); anything else is resumed or timed out.
            task.cancel(SHUTDOWN)
            with contextlib.suppress(asyncio.CancelledError, StewardError):
                await task
            raise
        finally:
            beat.cancel()
        if result.reason_code == RESUMED_ELSEWHERE:  # a lost worker still drives it: later
            raise ApplicationError(result.reason, type=RESUMED_ELSEWHERE)
        return activation(result, self._expiry(result))

    async def _activate(self, start: RunStart, reason: str) -> RunResult:
        try:
            agent = self._agent(start.agent, start.agent_version)
        except StoreError:
            raise
        except StewardError as exc:  # cannot be rebuilt here, nor on any retry
            raise ApplicationError(str(exc), type=exc.code, non_retryable=True) from exc
        try:
            return await self._run_or_resume(agent, start, reason)
        except StoreError:
            raise  # the journal is down: retry when it is back
        except StewardError as exc:  # the agent is disabled, the version changed: final
            raise ApplicationError(str(exc), type=exc.code, non_retryable=True) from exc

    async def _run_or_resume(self, agent: AgentRuntime, start: RunStart, reason: str) -> RunResult:
        on_text = self.relay.sink(start.run_id) if self.relay is not None else None
        try:
            get_run(self.db, start.run_id)
        except NotFoundError:
            return await self.runner.run(
                agent, start.text, run_id=start.run_id, tags=start.tags,
                label=start.label, arm=start.arm, on_text=on_text,
            )  # fmt: skip
        attempt = activity.info().attempt
        why = reason or "started"
        if attempt > 1:
            why = f"{why}; taken over by another worker (attempt {attempt})"
        return await self.runner.resume(agent, start.run_id, why, on_text=on_text)

    def _expiry(self, result: RunResult) -> float | None:
        if result.status is not RunStatus.WAITING:
            return None
        return min(get_approval(self.db, a).expires_at for a in result.waiting_on)

    @activity.defn(name=EXPIRE)
    async def expire(self, run_id: str) -> None:
        """Expire the overdue requests of the run's tree (its own, and its children's)."""
        tree = {row.id for row in await asyncio.to_thread(run_tree, self.db, run_id)}
        for row in await asyncio.to_thread(overdue_approvals, self.db):
            if row.run_id in tree:
                await asyncio.to_thread(
                    expire_approval, self.db, row.id, on_commit=self.journal.publish
                )

    @activity.defn(name=CANCEL)
    async def cancel(self, request: CancelRequest) -> Activation:
        """Finish the run `cancelled`, and the runs of its tree below it, unless it
        finished already (as the cancelled activation records it itself)."""
        try:
            row = await asyncio.to_thread(
                cancel_tree, self.db, self.journal, request.run_id, by=request.by,
                reason=request.reason,
            )  # fmt: skip
        except ConflictError:
            row = get_run(self.db, request.run_id)
        return _of_row(row)

    @activity.defn(name=TIMED_OUT)
    async def timed_out(self, start: RunStart) -> Activation:
        """No worker finished the activation within max_run_seconds: escalate on record,
        the run and the unfinished runs of its tree (deepest first), which nothing else
        drives."""
        tree = await asyncio.to_thread(run_tree, self.db, start.run_id)
        for row in sorted(tree, key=lambda r: -r.hop):
            if row.finished_at is None:
                await self._escalate(row, start.max_run_seconds)
        return _of_row(get_run(self.db, start.run_id))

    async def _escalate(self, row: RunRow, max_run_seconds: float) -> None:
        executor = self.engine.executor(row.id, row.agent, row.agent_version)
        executor.load()
        if executor.history.finished is None:
            executor.emit(
                RunFinished(
                    RunStatus.ESCALATED,
                    reason_code="limits.max_run_seconds",
                    reason=f"the run exceeded max_run_seconds={max_run_seconds:g}"
                    if row.hop == 0
                    else f"its tree's root exceeded max_run_seconds={max_run_seconds:g}",
                    steps=max(executor.history.models, default=-1) + 1,
                )
            )
            await executor.durable()


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT.total_seconds() / 4)
