"""The temporal engine under faults, against a real dev server: approvals across a
worker restart, a worker killed (SIGKILL) mid-write whose run another worker finishes
without repeating the side effect, cancellation, and approval expiry as a durable timer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from steward.core.events import RunQueued, RunResumed, RunStatus, ToolStarted, ToolSucceeded
from steward.demo.job import demo_spec
from steward.demo.systems import SupportSystems
from steward.demo.tools import SYSTEMS_ENV, support_tools
from steward.engines.approvals import ApprovalService
from steward.runtime import AgentRuntime, build_agent
from steward.security.keys import Principal, Role
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import get_approval
from steward.store.runs import get_run, read_journal

try:
    from temporalio.client import WorkflowExecutionStatus

    from steward.engines.temporal.client import TemporalRuns, connect
    from steward.engines.temporal.worker import build_worker
except ImportError:  # the `temporal` extra is absent: skip, except under CI
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("Temporal engine tests need the `temporal` extra", allow_module_level=True)

# the demo's T0002: a refund between $50 and $500 waits for a person
REFUND_330 = "Order #10114 arrived without the ultralight tent. Please refund $330 for it.\n\nAva"
REVIEWER = Principal("key-r", "principal-r", "rita", Role.REVIEWER)
SETTLE = 60.0  # seconds any one activation may take here (a takeover waits for a heartbeat)


@dataclass
class Deployment:
    db: Database
    journal: Journal
    runs: TemporalRuns
    queue: str
    address: str
    url: str
    systems: Path

    def worker(self):  # type: ignore[no-untyped-def]
        return build_worker(self.runs.client, self.db, self.journal, task_queue=self.queue)

    def agent(self, *edit: str) -> AgentRuntime:
        spec = demo_spec()
        if edit:
            old, new = edit
            assert old in spec.text
            spec = load_spec_text(spec.text.replace(old, new), "support-desk-variant.yaml")
        return build_agent(spec, support_tools(self.systems))

    async def settled(self, run_id: str, after: int = 0) -> object:
        return await asyncio.wait_for(self.runs.settled(run_id, after), SETTLE)


@pytest.fixture
async def d(
    temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Deployment]:
    systems = tmp_path / "systems.db"
    monkeypatch.setenv(SYSTEMS_ENV, str(systems))
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url, create=True)
    journal = Journal(db)
    client = await connect(temporal_address)
    queue = f"test-{uuid.uuid4().hex[:10]}"
    try:
        yield Deployment(
            db, journal, TemporalRuns(client, db, journal, task_queue=queue), queue,
            temporal_address, url, systems,
        )  # fmt: skip
    finally:
        journal.close()
        db.close()


def refunds(systems: Path) -> int:
    with SupportSystems.open(systems) as opened:
        return opened.count("refunds")


def worker_process(
    d: Deployment, log: IO[bytes], crash_at: str = "", **extra: str
) -> subprocess.Popen[bytes]:
    """`steward worker` in a process of its own, on the deployment's queue."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        STEWARD_CRASH_AT=crash_at,
        STEWARD_DEMO_SYSTEMS=str(d.systems),
        **extra,
    )
    return subprocess.Popen(
        [sys.executable, "-c", "from steward.cli.main import main; main()", "worker",
         "--db", d.url, "--temporal", d.address, "--task-queue", d.queue],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def approve(d: Deployment) -> ApprovalService:
    return ApprovalService(d.db, d.journal, d.runs.decided)  # deciding signals the workflow


async def test_a_run_waits_for_a_person_across_a_worker_restart(d: Deployment) -> None:
    agent = d.agent()
    async with d.worker():
        run_id = await d.runs.start(agent, REFUND_330)
        waiting = await d.settled(run_id)
    assert waiting.status is RunStatus.WAITING  # type: ignore[attr-defined]
    # no worker runs now; the decision is a signal the workflow keeps
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    await approve(d).decide(approval, who=REVIEWER, approve=True, comment="ok")
    async with d.worker():  # a new worker (a restarted machine) finishes the run
        done = await d.settled(run_id, after=1)
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert refunds(d.systems) == 1
    assert get_run(d.db, run_id).status == "succeeded"


async def test_a_worker_killed_mid_write_leaves_the_run_to_another_which_never_repeats_it(
    d: Deployment, tmp_path: Path
) -> None:
    """Worker A (a process) is SIGKILLed after the refund's call returned and before its
    result is on record; worker B takes the activation over once A's heartbeat stops,
    resumes from the journal, and the keyed refund is not made twice."""
    agent = d.agent()
    async with d.worker():
        run_id = await d.runs.start(agent, REFUND_330)
        waiting = await d.settled(run_id)
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    log = (tmp_path / "worker-a.log").open("wb")
    # the refund will run; A dies before its result is recorded
    a = worker_process(d, log, crash_at="tool.after:1")
    try:
        await asyncio.sleep(3.0)  # A polls the queue
        assert a.poll() is None, (tmp_path / "worker-a.log").read_text()
        await approve(d).decide(approval, who=REVIEWER, approve=True, comment="ok")
        killed = await asyncio.to_thread(a.wait, SETTLE)
        assert killed == -signal.SIGKILL
        assert get_run(d.db, run_id).status == "running"  # left mid-run by a dead worker
        started = time.monotonic()
        async with d.worker():  # B
            done = await d.settled(run_id, after=1)
        taken_over = time.monotonic() - started
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        log.close()
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert refunds(d.systems) == 1  # the keyed refund ran twice, acted once
    events = [e.event for e in read_journal(d.db, run_id)]
    intents = [e for e in events if isinstance(e, ToolStarted) and e.tool == "issue_refund"]
    results = [e for e in events if isinstance(e, ToolSucceeded) and e.tool == "issue_refund"]
    assert len(intents) == 2  # A's intent (then A died mid-write) and B's retry, same key
    assert len({i.key for i in intents}) == 1
    assert len(results) == 1
    assert taken_over < SETTLE


async def test_a_worker_killed_mid_unkeyed_write_leaves_outcome_unknown_for_a_person(
    d: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on the embedded engine: the write's intent is on record, its result is not, and
    it takes no key, so the worker that takes over never runs it again."""
    from engines.unkeyed_tools import NOTES_SPEC, note_tools

    notes = tmp_path / "notes.txt"
    monkeypatch.setenv("STEWARD_TEST_NOTES", str(notes))
    agent = build_agent(load_spec_text(NOTES_SPEC, "notes.yaml"), note_tools())
    log = (tmp_path / "worker-a.log").open("wb")
    a = worker_process(d, log, crash_at="tool.after:1", STEWARD_TEST_NOTES=str(notes))
    try:
        await asyncio.sleep(3.0)  # A polls the queue
        run_id = await d.runs.start(agent, "take a note")
        assert await asyncio.to_thread(a.wait, SETTLE) == -signal.SIGKILL
        async with d.worker():  # B
            done = await d.settled(run_id)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        log.close()
    assert (done.status, done.reason_code) == (RunStatus.ESCALATED, "tool.outcome_unknown")  # type: ignore[attr-defined]
    assert notes.read_text().splitlines() == ["hello"]  # written once, by A, never again


async def test_cancelling_the_workflow_cancels_the_run(d: Deployment) -> None:
    agent = d.agent()
    async with d.worker():
        run_id = await d.runs.start(agent, REFUND_330)
        waiting = await d.settled(run_id)
        await d.runs.cancel(run_id, by="rita", reason="the customer withdrew")
        done = await d.settled(run_id, after=1)
    assert done.status is RunStatus.CANCELLED  # type: ignore[attr-defined]
    row = get_run(d.db, run_id)
    assert (row.status, row.reason_code) == ("cancelled", "run.cancelled")
    assert "the customer withdrew" in row.reason
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    assert get_approval(d.db, approval).status == "cancelled"
    assert refunds(d.systems) == 0


async def test_cancelling_a_run_mid_activation_records_who_and_why(
    d: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engines.unkeyed_tools import NOTES_SPEC, note_tools

    monkeypatch.setenv("STEWARD_TEST_NOTES", str(tmp_path / "notes.txt"))
    agent = build_agent(load_spec_text(NOTES_SPEC, "notes.yaml"), note_tools())
    async with d.worker():
        run_id = await d.runs.start(agent, "a slow one")
        for _ in range(200):  # until its slow tool is running
            if any(isinstance(e.event, ToolStarted) for e in read_journal(d.db, run_id)):
                break
            await asyncio.sleep(0.05)
        started = time.monotonic()
        await d.runs.cancel(run_id, by="rita", reason="wrong customer")
        done = await d.settled(run_id)
    assert time.monotonic() - started < 20  # not the tool's minute
    closed = await d.runs.handle(run_id).describe()
    assert closed.status is WorkflowExecutionStatus.CANCELED
    assert done.status is RunStatus.CANCELLED  # type: ignore[attr-defined]
    row = get_run(d.db, run_id)
    assert (row.status, row.reason_code) == ("cancelled", "run.cancelled")
    assert "wrong customer" in row.reason


async def test_an_approval_expires_on_the_workflows_durable_timer(d: Deployment) -> None:
    """No sweeper runs here: only the workflow's timer can expire the request."""
    agent = d.agent("expires_after_seconds: 86400", "expires_after_seconds: 2")
    async with d.worker():
        run_id = await d.runs.start(agent, REFUND_330)
        waiting = await d.settled(run_id)
        assert waiting.status is RunStatus.WAITING  # type: ignore[attr-defined]
        started = time.monotonic()
        done = await d.settled(run_id, after=1)
        took = time.monotonic() - started
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    assert get_approval(d.db, approval).status == "expired"
    assert "approval.expired" in done.denials  # type: ignore[attr-defined]
    assert done.status is not RunStatus.WAITING  # type: ignore[attr-defined]
    assert refunds(d.systems) == 0
    assert took < 15


async def test_the_server_starts_decides_and_cancels_runs_through_workers(d: Deployment) -> None:
    """`steward serve --engine temporal`: the RunService drives nothing itself."""
    from steward.server.service import RunService

    agent = d.agent()
    service = RunService(d.db, d.journal, {agent.name: agent}, d.runs)
    async with d.worker():
        first = await service.start(agent.name, REFUND_330, {})
        second = await service.start(agent.name, REFUND_330, {})
        assert get_run(d.db, first).agent == agent.name  # on record when start answers
        waiting = await d.settled(first)
        await d.settled(second)
        (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
        await service.approvals.decide(approval, who=REVIEWER, approve=True, comment="ok")
        done = await d.settled(first, after=1)
        cancelled = await service.cancel(second, by="rita", reason="duplicate ticket")
    assert service._tasks == {}  # no activation ran in the server
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert cancelled.status == "cancelled"
    assert refunds(d.systems) == 1
    assert await service.recover() == []  # Temporal, not the server, resumes runs


async def test_a_run_that_finished_before_anyone_asked_still_answers(d: Deployment) -> None:
    """Asking for an activation's outcome once the workflow has closed (a busy client
    asks late) reads it from the workflow's record, not from an update it cannot take."""
    agent = d.agent()
    async with d.worker():
        run_id = await d.runs.start(agent, "Where is my order #10014?")
        await asyncio.wait_for(d.runs.handle(run_id).result(), SETTLE)  # closed now
        done = await d.settled(run_id)
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert done.run_id == run_id  # type: ignore[attr-defined]


async def test_max_run_seconds_is_kept_by_the_server_when_no_worker_is_alive(
    d: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only worker dies mid-run and none comes back within max_run_seconds: the
    activation's durable timeout fires on the Temporal server, and the first worker to
    return ends the run `escalated` on record instead of driving it on."""
    from engines.unkeyed_tools import NOTES_SPEC, note_tools
    from steward.engines.temporal.workflow import GRACE

    notes = tmp_path / "notes.txt"
    monkeypatch.setenv("STEWARD_TEST_NOTES", str(notes))
    spec = load_spec_text(NOTES_SPEC + "limits:\n  max_run_seconds: 1\n", "notes.yaml")
    agent = build_agent(spec, note_tools())
    log = (tmp_path / "worker-a.log").open("wb")
    a = worker_process(d, log, crash_at="tool.after:1", STEWARD_TEST_NOTES=str(notes))
    try:
        await asyncio.sleep(3.0)
        run_id = await d.runs.start(agent, "take a note")
        assert await asyncio.to_thread(a.wait, SETTLE) == -signal.SIGKILL
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        log.close()
    await asyncio.sleep(1 + GRACE + 1)  # no worker alive past the activation's bound
    async with d.worker():
        done = await d.settled(run_id)
    assert (done.status, done.reason_code) == (RunStatus.ESCALATED, "limits.max_run_seconds")  # type: ignore[attr-defined]
    assert get_run(d.db, run_id).status == "escalated"
    # ended by the durable timer's activity, not by a resumed activation's own timeout
    assert not any(isinstance(e.event, RunResumed) for e in read_journal(d.db, run_id))
    assert notes.read_text().splitlines() == ["hello"]  # the write was never run again


async def test_a_labelled_run_records_its_label_on_the_temporal_engine_too(d: Deployment) -> None:
    """The version a label chose is the one a worker runs, and the run's record names the
    label and canary arm, as on the embedded engine (monitors compare versions by them)."""
    from steward.server.service import RunService
    from steward.store.labels import move_label

    agent = d.agent()
    service = RunService(d.db, d.journal, {agent.name: agent}, d.runs)
    service.remember_loaded()
    move_label(d.db, agent.name, "production", agent.version, action="override", by="test",
               reason="a test sets the label directly")  # fmt: skip
    async with d.worker():
        run_id = await service.start(agent.name, "Where is my order #10014?", {})
        done = await d.settled(run_id)
    row = get_run(d.db, run_id)
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert (row.agent_version, row.label, row.arm) == (agent.version, "production", "")  # no canary


async def test_a_queued_run_whose_server_died_before_starting_its_workflow_is_adopted(
    d: Deployment,
) -> None:
    """TemporalRuns.start puts the run on record (queued) before it starts the workflow;
    a server killed between the two leaves a queued run no worker will ever see. A
    server's recovery starts its workflow, once: a second recovery finds it started."""
    from steward.engines.embedded import EmbeddedEngine
    from steward.runtime.runner import new_run_id
    from steward.server.service import RunService

    agent = d.agent()
    service = RunService(d.db, d.journal, {agent.name: agent}, d.runs)
    service.remember_loaded()
    run_id = new_run_id()
    executor = EmbeddedEngine(d.db, d.journal).executor(run_id, agent.name, agent.version)
    executor.emit(RunQueued(agent.name, agent.version, "Where is my order #10014?"))
    await executor.durable()  # ... and the server died here
    async with d.worker():
        assert await service.recover() == [run_id]
        done = await d.settled(run_id)
        assert await service.recover() == []
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert get_run(d.db, run_id).status == "succeeded"


async def test_a_sweep_racing_a_live_starter_leaves_the_run_one_workflow(
    d: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's sweep adopts a queued run whose starter is alive but slow (between
    putting the run on record and starting its workflow) once the grace has passed, not
    before. The starter's own start then finds the workflow started, still answers with
    the run, and the run runs once."""
    from steward.server.service import RunService

    agent = d.agent()
    service = RunService(d.db, d.journal, {agent.name: agent}, d.runs)
    service.remember_loaded()
    real = d.runs._start_workflow
    swept: list[list[str]] = []
    started: list[bool] = []

    async def slow_starter(start):  # type: ignore[no-untyped-def]
        if swept:  # the sweep's adoption, inside the starter's pause
            return await real(start)
        swept.append(await service.take_over(grace_seconds=3600))  # within the grace
        swept.append(await service.take_over(grace_seconds=0))  # the sweep wins the race
        started.append(await real(start))
        return started[-1]

    monkeypatch.setattr(d.runs, "_start_workflow", slow_starter)
    async with d.worker():
        run_id = await service.start(agent.name, "Where is my order #10014?", {})
        done = await d.settled(run_id)
    assert swept == [[], [run_id]]
    assert started == [False]  # the workflow existed: the starter's start was refused
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    types = [entry.type for entry in read_journal(d.db, run_id)]
    assert types.count("run.started") == 1 and types.count("run.finished") == 1, types
