"""What the server does besides answering: it hosts a Runner, drives runs in background
tasks, resumes a run after a person decides, cancels, and tells followers (Server-Sent
Events, the console) that a run has news.

Runs of one run id are driven one activation at a time (a per-run lock), so two
decisions arriving together resume the run once after the other, never concurrently.
Across replicas of one PostgreSQL database, a process drives a run only while it holds
the run's lease (store/leases.py), so every replica may recover at start (a run another
live replica drives is left to it), and followers hear of runs other replicas drive by
watching the events table (store/watch.py), and get the model's text chunks of those
runs (other replicas', and `steward worker`s') over the token relay
(store/token_relay.py). A replica that dies is not waited for: every server's periodic
sweep takes over the runs whose lease nobody holds (`take_over`), so its runs finish on
a live replica within about one sweep interval; with a remote engine, the sweep starts
the workflow of a run a dead server left queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from steward.core.agent_state import Autonomy
from steward.core.errors import ConflictError, NotFoundError, StewardError, StoreUnavailable
from steward.core.events import RunStatus
from steward.core.lifecycle import SHUTDOWN
from steward.engines.approvals import ApprovalService
from steward.engines.cancel import cancel_tree
from steward.engines.catalog import agent_for_run
from steward.engines.embedded import EmbeddedEngine
from steward.engines.labelled import LabelledAgents
from steward.models.external import EXTERNAL_CODE, is_external
from steward.orchestration import Delegator
from steward.runtime import AgentRuntime, Runner, RunResult
from steward.runtime.runner import RESUMED_ELSEWHERE, AgentDisabled, new_run_id
from steward.store.agents import set_agent_state
from steward.store.approvals import expire_approval, overdue_approvals
from steward.store.chain import PendingEvent
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.leases import RunLeases
from steward.store.recovery import Scope, resumable_runs
from steward.store.runs import RunRow, get_run, root_of
from steward.store.token_relay import TokenRelay
from steward.store.watch import last_event_id, runs_changed_after

log = logging.getLogger("steward.server")

# How long POST /v1/runs waits for a run's start to be durable before it answers 503 (the
# run is not acknowledged then; it may still start once the store heals).
START_PATIENCE = 2.0
# How often a server with followers looks for events other processes committed.
WATCH_SECONDS = 0.1
LEASE_CHECK_SECONDS = 2.0  # how often a server asks its lease session is alive


class RemoteRuns(Protocol):
    """Runs driven by workers elsewhere (`--engine temporal`: engines/temporal/client.py)."""

    async def start(
        self,
        agent: AgentRuntime,
        text: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        label: str = "",
        arm: str = "",
    ) -> str: ...

    async def decided(self, run_id: str, why: str) -> None: ...

    async def adopt(self, agent: AgentRuntime, row: RunRow) -> bool: ...

    async def cancel(self, run_id: str, *, by: str, reason: str) -> None: ...


# How long the server waits for a remote worker to record a run's cancellation (or a
# run's start, for an engine that does not put it on record itself, as TemporalRuns
# does) before it answers anyway (the run is acknowledged: the engine holds it durably).
REMOTE_PATIENCE = 10.0


@dataclass(slots=True)
class _Follower:
    """One SSE client of one run: woken when the run's journal grows; tokens queued."""

    loop: asyncio.AbstractEventLoop
    news: asyncio.Event = field(default_factory=asyncio.Event)
    tokens: list[str] = field(default_factory=list)
    # set once the processes that drive runs know this run is followed (token relay)
    listening: threading.Event = field(default_factory=threading.Event)

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.news.set)

    def take(self, text: str) -> None:
        """A chunk another process streamed (on this follower's loop)."""
        self.tokens.append(text)
        self.news.set()


class RunService:
    def __init__(
        self,
        db: Database,
        journal: Journal,
        agents: dict[str, AgentRuntime],
        remote: RemoteRuns | None = None,
        default_label: str = "production",
    ) -> None:
        self.db = db
        self.journal = journal
        self.agents = agents
        self.remote = remote  # None: this process drives runs (the embedded engine)
        # delegate.* / handoff.* calls run the specialists this server loads
        self.runner = Runner(
            EmbeddedEngine(db, journal), delegation=Delegator(self._specialist, db)
        )
        self.labelled = LabelledAgents(db, default_label)
        self._tasks: dict[str, asyncio.Task[RunResult]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._followers: dict[str, list[_Follower]] = {}
        self.approvals = ApprovalService(db, journal, self._resume_in_background)
        self.leases = RunLeases(db)
        self._seen: int | None = None  # the last event id the watcher read
        self._has_workflow: set[str] = set()  # queued runs whose workflow exists (remote)
        self._external_versions: set[tuple[str, str]] = set()  # (agent, version) external
        journal.subscribe(self._on_commit)
        # PostgreSQL: text chunks of runs other processes drive, and of ours to them
        self.relay = TokenRelay(db, on_tokens=self._relayed, drives=remote is None).start()

    def remember_loaded(self) -> None:
        """Put the loaded agents' versions on record, so they can be promoted, labelled
        and compared before their first run."""
        for agent in self.agents.values():
            self.runner.remember_version(agent)

    # -- runs --------------------------------------------------------------------------

    def _specialist(self, name: str) -> AgentRuntime | None:
        """The agent a delegation names: the version the default label points at."""
        loaded = self.agents.get(name)
        return None if loaded is None else self.labelled.choose(loaded, name, None).agent

    def agent(self, name: str) -> AgentRuntime:
        found = self.agents.get(name)
        if found is None:
            raise NotFoundError(
                f"no agent {name!r} is loaded by this server "
                f"(loaded: {', '.join(sorted(self.agents)) or 'none'})"
            )
        return found

    async def start(
        self, agent_name: str, text: str, tags: dict[str, str], label: str | None = None
    ) -> str:
        """Start a run in the background; returns its id once its start is durable. It
        runs the version `label` (or the default label) points at (engines/labelled.py)."""
        loaded = self.agent(agent_name)
        run_id = new_run_id()
        choice = await asyncio.to_thread(self.labelled.choose, loaded, run_id, label)
        agent = choice.agent
        self.runner.states.forget(agent.name)
        state = self.runner.states(agent.name)
        if state.unknown:  # the store did not answer: that is not the agent's kill switch
            raise StoreUnavailable(f"the state of agent {agent.name} cannot be read now")
        if not state.enabled:
            raise AgentDisabled(f"agent {agent.name} is disabled; no new runs start")
        self.journal.check_available()  # in an outage, refuse before creating anything
        if self.remote is not None:
            await self.remote.start(
                agent, text, run_id=run_id, tags=tags, label=choice.label, arm=choice.arm
            )
            await self._recorded(run_id, lambda row: row is not None)
            return run_id
        await self.leases.acquire(run_id)  # a new id: free, unless the store is down
        self._spawn(run_id, lambda: self.runner.run(
            agent, text, run_id=run_id, tags=tags, on_text=self._token_sink(run_id),
            label=choice.label, arm=choice.arm,
        ), leased=True)  # fmt: skip
        await asyncio.sleep(0)  # let the run emit its start
        await self.journal.flush(patience=START_PATIENCE)
        return run_id

    async def _resume_in_background(self, run_id: str, reason: str) -> None:
        """How `approvals` resumes a decided (or expired) request's run: in a task."""
        self.resume_later(run_id, reason)

    async def sweep_expired(self) -> int:
        """Expire overdue approvals and resume their runs, then every run still waiting
        behind requests that are all decided, expired or cancelled (its resume was lost
        to a crash); returns how many approvals expired."""
        overdue = await asyncio.to_thread(overdue_approvals, self.db)
        for row in overdue:
            await asyncio.to_thread(
                expire_approval, self.db, row.id, on_commit=self.journal.publish
            )
            root = await asyncio.to_thread(root_of, self.db, row.run_id)
            self.resume_later(root, f"approval {row.id} expired")
        await self._drive_resumable("unblocked", "its approvals were decided")
        return len(overdue)

    async def sweep_forever(self, every_seconds: float, take_over: bool = True) -> None:
        """The server's sweeper: nobody has to run `steward approvals sweep` by hand, no
        run stays waiting behind a decided request, and (with `take_over`) what a process
        that stopped or died left is taken over (`take_over`), all without a restart. A
        store fault is logged, and the next sweep tries again. Between sweeps, at most
        every LEASE_CHECK_SECONDS, it checks this process still holds the leases of the
        runs it drives (`stop_lost_runs`)."""

        async def taking_over() -> None:
            if take_over:
                await self.take_over(grace_seconds=every_seconds)

        tick = min(every_seconds, LEASE_CHECK_SECONDS)
        next_sweep = asyncio.get_running_loop().time() + every_seconds
        while True:
            await asyncio.sleep(tick)
            steps: list[tuple[str, Callable[[], Any]]] = [("checking leases", self.stop_lost_runs)]
            if asyncio.get_running_loop().time() >= next_sweep:
                next_sweep += every_seconds
                steps += [("approval sweep", self.sweep_expired), ("taking over runs", taking_over)]
            for what, step in steps:
                try:
                    await step()
                except StewardError as exc:
                    log.warning("%s failed (the next sweep tries again): %s", what, exc)
                except Exception as exc:  # the store or the engine, down for a moment
                    log.warning("%s failed (the next sweep tries again): %r", what, exc)

    async def stop_lost_runs(self) -> list[str]:
        """Stop driving the runs whose lease this process lost (its lease session died and
        another replica's sweep took them over meanwhile): each stops as at a shutdown,
        `running` with what it recorded, for the process that holds its lease now.
        Without this a run could have two drivers until one ended. Returns their ids."""
        if not self.leases.shared:
            return []
        lost = await asyncio.to_thread(self.leases.verify)
        stopped = []
        for run_id in sorted(lost):
            task = self._tasks.get(run_id)
            if task is not None and not task.done():
                log.error("run %s: its lease was lost; another process drives it now, "
                          "this one stops", run_id)  # fmt: skip
                task.cancel(SHUTDOWN)
                stopped.append(run_id)
        return stopped

    async def take_over(self, grace_seconds: float) -> list[str]:
        """Drive the runs a process that stopped or died left, while this one serves
        (the sweep's part of recovery; `recover` is the start's). Returns their ids.

        Shared leases (PostgreSQL): every resumable run (scope "all") whose lease no
        process holds now: a dead replica's session, and its leases, are gone. The
        runs leased by live processes are filtered out in one query (RunLeases.unheld),
        not tried one by one; of the rest, each is driven only once its lease is taken
        (fail closed: a lease that cannot be had drives nothing). A run of an agent with
        `model: external` is its program's to drive and is left alone.
        SQLite (one server per database): nothing here; a run `running` may be driven by
        a `steward run` on the same file, which holds no lease this process could see.
        Temporal: the queued runs on record for more than `grace_seconds` whose
        workflow was never started (`_adopt_queued`)."""
        if self.remote is not None:
            return await self._adopt_queued(grace_seconds)
        if not self.leases.shared:
            return []
        found = await asyncio.to_thread(resumable_runs, self.db, "all")
        candidates = [
            row.id for row in found if row.id not in self._tasks and not self._external(row)
        ]
        if not candidates:
            return []
        free = await asyncio.to_thread(self.leases.unheld, candidates)
        versions = {row.id: (row.agent, row.agent_version) for row in found}
        for run_id in free:
            if run_id not in self._tasks:  # started here meanwhile
                self._spawn(run_id, self._taking_over(run_id, versions[run_id]))
        return free

    def _taking_over(self, run_id: str, version: tuple[str, str]) -> Callable[[], Any]:
        async def activation() -> RunResult:
            result = await self._resume(run_id, "taken over from a process that stopped")
            if result.reason_code == EXTERNAL_CODE:  # not ours to drive: not asked again
                self._external_versions.add(version)
            return result

        return activation

    def _external(self, row: RunRow) -> bool:
        """A run of an agent its own program drives (steward.Run.attach): a loaded one, or
        a version a takeover found to be one."""
        if (row.agent, row.agent_version) in self._external_versions:
            return True
        loaded = self.agents.get(row.agent)
        return (
            loaded is not None and loaded.version == row.agent_version and is_external(loaded.model)
        )

    def resume_later(self, run_id: str, reason: str) -> None:
        if self.remote is not None:  # the run's workflow drives it on
            task = asyncio.create_task(self.remote.decided(run_id, reason))
            task.add_done_callback(_log_failure)
            return
        self._spawn(run_id, lambda: self._resume(run_id, reason))

    async def _recorded(self, run_id: str, seen: Callable[[RunRow | None], bool]) -> None:
        """Wait (at most REMOTE_PATIENCE) until a worker's record of the run satisfies
        `seen`: what this server answers is then already on record."""
        deadline = asyncio.get_running_loop().time() + REMOTE_PATIENCE
        while asyncio.get_running_loop().time() < deadline:
            try:
                row: RunRow | None = await asyncio.to_thread(get_run, self.db, run_id)
            except NotFoundError:
                row = None
            if seen(row):
                return
            await asyncio.sleep(0.05)

    async def _resume(self, run_id: str, reason: str) -> RunResult:
        run = await asyncio.to_thread(get_run, self.db, run_id)
        loaded = self.agents.get(run.agent)
        agent = (
            loaded
            if loaded is not None and loaded.version == run.agent_version
            else await asyncio.to_thread(agent_for_run, self.db, run_id)
        )
        return await self.runner.resume(agent, run_id, reason, on_text=self._token_sink(run_id))

    async def cancel(self, run_id: str, *, by: str, reason: str) -> RunRow:
        """Cancel the run's whole tree, whichever of its runs is named (a tree is driven
        from its root: a run below cannot go on without it); returns the named run."""
        run = await asyncio.to_thread(get_run, self.db, run_id)
        if self.remote is not None:
            if run.status in {"succeeded", "failed", "escalated", "cancelled"}:
                raise ConflictError(f"run {run_id} already {run.status}")
            await self.remote.cancel(run_id, by=by, reason=reason)
            await self._recorded(
                run_id, lambda row: row is not None and row.finished_at is not None
            )
            return await asyncio.to_thread(get_run, self.db, run_id)
        if run.status in {"succeeded", "failed", "escalated", "cancelled"}:
            raise ConflictError(f"run {run_id} already {run.status}")
        root = run.root_run_id or run.id
        task = self._tasks.get(root)
        if task is not None and not task.done():
            # the activation's runner finishes the runs it drives `cancelled` on record
            task.cancel(f"cancelled by {by}: {reason}")
            with contextlib.suppress(asyncio.CancelledError, StewardError):
                await task
            await self.journal.flush()
        with contextlib.suppress(ConflictError):  # what the activation did not finish
            await asyncio.to_thread(cancel_tree, self.db, self.journal, root, by=by, reason=reason)
        run = await asyncio.to_thread(get_run, self.db, run_id)
        if run.status != "cancelled":  # it finished before the cancellation reached it
            raise ConflictError(f"run {run_id} already {run.status}")
        return run

    def _spawn(self, run_id: str, activation: Callable[[], Any], *, leased: bool = False) -> None:
        """Drive `activation` in a task, one at a time per run, holding the run's lease
        (taken already when `leased`); a run another process holds is left to it."""
        lock = self._locks.setdefault(run_id, asyncio.Lock())

        async def drive() -> RunResult:
            nonlocal leased
            async with lock:
                if not leased and not await self.leases.acquire(run_id):
                    return RunResult(
                        run_id,
                        RunStatus.RUNNING,
                        reason_code=RESUMED_ELSEWHERE,
                        reason=f"run {run_id} is driven by another process",
                    )
                leased = False  # the next activation of this task's run takes it again
                try:
                    result: RunResult = await activation()
                    return result
                finally:
                    await self.leases.release(run_id)

        task = asyncio.create_task(drive(), name=f"steward-run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda done: self._finished(run_id, done))

    def _finished(self, run_id: str, task: asyncio.Task[RunResult]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            self._locks.pop(run_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("run %s: %s", run_id, task.exception())

    async def wait_idle(self) -> None:
        """Wait for every run this server is driving (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Give activations in flight `grace_seconds` to finish, then stop the rest. A
        shutdown is not a person's decision: a stopped run is not cancelled, it stays
        `running` (or `queued`, waiting for a slot) with everything it recorded, and the
        next start recovers it."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_seconds)
        left = [task for task in self._tasks.values() if not task.done()]
        for task in left:
            task.cancel(SHUTDOWN)
        if left:
            await asyncio.gather(*left, return_exceptions=True)
        self.leases.close()
        await asyncio.to_thread(self.relay.close)

    async def recover(self) -> list[str]:
        """Drive every run a stopped or crashed server left able to make progress:
        queued, running, and waiting behind decided requests (store/recovery.py). One
        server per database recovers at start; start others with recover=False.
        Returns their ids."""
        if self.remote is not None:  # the engine resumes its own runs on other workers
            return await self._adopt_queued()
        return await self._drive_resumable("all", "recovered after a server restart")

    async def _adopt_queued(self, grace_seconds: float = 0.0) -> list[str]:
        """Remote engine: start the workflow of every queued run, on record for more than
        `grace_seconds`, whose starter died between putting it on record and starting
        it (the engine has the others). A live starter racing this is harmless: the
        workflow's id is the run's, and a second start of it is refused
        (TemporalRuns._start_workflow), so the run has one workflow whoever wins. A run
        whose workflow is known to exist is not asked about again while it is queued."""
        assert self.remote is not None
        found = await asyncio.to_thread(resumable_runs, self.db, "all")
        before = time.time() - grace_seconds
        queued = {row.id for row in found if row.status == "queued"}
        self._has_workflow &= queued  # forget the runs that left the queue
        adopted = []
        for row in found:
            if row.id not in queued or row.id in self._has_workflow or row.updated_at > before:
                continue
            loaded = self.agents.get(row.agent)
            try:
                agent = (
                    loaded
                    if loaded is not None and loaded.version == row.agent_version
                    else await asyncio.to_thread(agent_for_run, self.db, row.id)
                )
                if await self.remote.adopt(agent, row):
                    adopted.append(row.id)
                self._has_workflow.add(row.id)
            except StewardError as exc:  # cannot be rebuilt here: another replica may
                log.warning("run %s is queued and could not be adopted: %s", row.id, exc)
        return adopted

    async def _drive_resumable(self, scope: Scope, reason: str) -> list[str]:
        found = await asyncio.to_thread(resumable_runs, self.db, scope)
        ids = [run.id for run in found if run.id not in self._tasks]
        for run_id in ids:
            self.resume_later(run_id, reason)
        return ids

    # -- agents ------------------------------------------------------------------------

    def set_state(
        self,
        name: str,
        *,
        by: str,
        enabled: bool | None = None,
        mode: Autonomy | None = None,
        comment: str = "",
    ) -> None:
        set_agent_state(
            self.db, name, by=by, enabled=enabled, mode=mode, comment=comment,
            on_commit=self.journal.publish,
        )  # fmt: skip
        self.runner.states.forget(name)

    # -- followers ---------------------------------------------------------------------

    def follow(self, run_id: str) -> _Follower:
        follower = _Follower(asyncio.get_running_loop())
        follower.listening = self.relay.follow(run_id)
        self._followers.setdefault(run_id, []).append(follower)
        return follower

    def unfollow(self, run_id: str, follower: _Follower) -> None:
        found = self._followers.get(run_id, [])
        if follower in found:
            found.remove(follower)
            self.relay.unfollow(run_id)
        if not found:
            self._followers.pop(run_id, None)

    async def watch_forever(self, every_seconds: float = WATCH_SECONDS) -> None:
        """While anyone follows a run, look for events other processes committed (a
        replica driving the run, a decision taken elsewhere) and wake its followers."""
        while True:
            await asyncio.sleep(every_seconds)
            if not self._followers:
                self._seen = None
                continue
            try:
                await self._watch_once()
            except StewardError as exc:
                log.warning("watching for events of other processes failed: %s", exc)
            except Exception as exc:  # the store may be down for a moment: try next time
                log.warning("watching for events of other processes failed: %r", exc)

    async def _watch_once(self) -> None:
        if self._seen is None:  # the first follower since none: everyone looks once
            self._seen = await asyncio.to_thread(last_event_id, self.db)
            changed = set(self._followers)
        else:
            self._seen, changed = await asyncio.to_thread(runs_changed_after, self.db, self._seen)
        for run_id in changed:
            for follower in self._followers.get(run_id, ()):
                follower.news.set()

    def _on_commit(self, batch: list[PendingEvent]) -> None:
        """Journal listener (writer thread): wake the followers of runs that changed."""
        for run_id in {p.run_id for p in batch if p.run_id is not None}:
            for follower in self._followers.get(run_id, ()):
                follower.wake()

    def _token_sink(self, run_id: str) -> Callable[[str], None]:
        publish = self.relay.publish

        def sink(text: str) -> None:
            for follower in self._followers.get(run_id, ()):
                follower.tokens.append(text)
                follower.news.set()
            publish(run_id, text)  # followers on other replicas, if any

        return sink

    def _relayed(self, run_id: str, text: str) -> None:
        """Token relay (its listener thread): a chunk of a run another process drives."""
        for follower in list(self._followers.get(run_id, ())):
            follower.loop.call_soon_threadsafe(follower.take, text)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("signalling a run's workflow failed: %s", task.exception())
