"""Delegation on the temporal engine, against a real dev server: a run tree is driven
inside its root's workflow (a child runs inline in its parent's activation, and has no
workflow of its own). `front` delegates to `router`, which delegates to the demo's
`refunds` desk (two hops); a $330 refund waits for a person, which pauses the tree."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from engines import test_temporal_faults as faults
from engines.test_temporal_faults import (
    REFUND_330,
    REVIEWER,
    SETTLE,
    Deployment,
    approve,
    refunds,
    worker_process,
)
from steward.core.events import RunStatus, ToolStarted, ToolSucceeded
from steward.demo.job import multi_agent_specs
from steward.demo.tools import support_tools
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store.approvals import get_approval
from steward.store.runs import read_journal, run_tree

d = faults.d  # the deployment fixture: a dev server's client, a database, a task queue
REFUND_30 = "Order #10114 arrived without the ultralight tent. Please refund $30 for it.\n\nAva"


def _router(name: str, target: str) -> str:
    return f"""
name: {name}
model: rules
prompt: You pass every ticket on to {target}.
tools: [delegate.{target}]
orchestration:
  agents: [{target}]
decision_authority:
  autonomous: [delegate.{target}]
limits:
  max_run_seconds: 120
rules:
  intents:
    - name: pass_on
      match: ['(?s).+']
      extract: {{message: '(?s)^(.+)$'}}
      plan:
        - [{{tool: delegate.{target}, args: {{message: '{{message}}'}}}}]
      answer: Passed on to {target}.
      confidence: 0.9
"""


def tree(d: Deployment, *edit: str) -> AgentRuntime:
    """The root `front`; `router` and `refunds` are put on record (the versions a
    worker's delegations rebuild), as a deployment that loaded them would."""
    (refunds_spec,) = [s for s in multi_agent_specs() if s.spec.name == "refunds"]
    if edit:
        refunds_spec = load_spec_text(refunds_spec.text.replace(*edit), "refunds.yaml")
    front = build_agent(load_spec_text(_router("front", "router"), "front.yaml"))
    router = build_agent(load_spec_text(_router("router", "refunds"), "router.yaml"))
    desk = build_agent(refunds_spec, support_tools(d.systems))
    runner = Runner(EmbeddedEngine(d.db, d.journal))
    for agent in (router, desk):
        runner.remember_version(agent)
    return front


def shape(d: Deployment, root: str) -> list[tuple[str, str]]:
    return [(r.agent, r.status) for r in run_tree(d.db, root)]


async def test_a_two_hop_tree_completes_on_temporal(d: Deployment) -> None:
    async with d.worker():
        root = await d.runs.start(tree(d), REFUND_30)
        done = await d.settled(root)
    assert done.status is RunStatus.SUCCEEDED, done  # type: ignore[attr-defined]
    assert shape(d, root) == [
        ("front", "succeeded"),
        ("router", "succeeded"),
        ("refunds", "succeeded"),
    ]
    assert refunds(d.systems) == 1
    # a child has no workflow of its own: the root's is the tree's
    for row in run_tree(d.db, root)[1:]:
        with pytest.raises(Exception, match="not found"):
            await d.runs.client.get_workflow_handle(row.id).describe()


async def test_a_childs_review_pauses_the_tree_and_a_decision_resumes_it_from_the_root(
    d: Deployment,
) -> None:
    async with d.worker():
        root = await d.runs.start(tree(d), REFUND_330, tags={"started_by": "admin:ops"})
        waiting = await d.settled(root)
        assert waiting.status is RunStatus.WAITING, waiting  # type: ignore[attr-defined]
        (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
        leaf = run_tree(d.db, root)[2]
        assert get_approval(d.db, approval).run_id == leaf.id  # the child's request
        assert shape(d, root) == [
            ("front", "waiting"),
            ("router", "waiting"),
            ("refunds", "waiting"),
        ]
        await approve(d).decide(approval, who=REVIEWER, approve=True, comment="ok")
        done = await d.settled(root, after=1)
    assert done.status is RunStatus.SUCCEEDED, done  # type: ignore[attr-defined]
    assert shape(d, root) == [
        ("front", "succeeded"),
        ("router", "succeeded"),
        ("refunds", "succeeded"),
    ]
    assert refunds(d.systems) == 1


async def test_a_decision_signalled_for_a_child_reaches_the_roots_workflow(
    d: Deployment,
) -> None:
    """TemporalRuns itself maps a child to its root: a caller that names the child's run
    (an approval's run) signals the tree's one workflow, never a missing one."""
    async with d.worker():
        root = await d.runs.start(tree(d), REFUND_330)
        waiting = await d.settled(root)
        (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
        leaf = get_approval(d.db, approval).run_id
        from steward.engines.approvals import ApprovalService

        await ApprovalService(d.db, d.journal, lambda _run, why: d.runs.decided(leaf, why)).decide(
            approval, who=REVIEWER, approve=False, comment="not this one"
        )
        done = await d.settled(root, after=1)
    assert done.status is not RunStatus.WAITING, done  # type: ignore[attr-defined]
    assert refunds(d.systems) == 0


async def test_a_childs_approval_expires_on_the_roots_durable_timer(d: Deployment) -> None:
    """No sweeper runs: only the root's workflow timer can expire the child's request."""
    front = tree(d, "expires_after_seconds: 86400", "expires_after_seconds: 2")
    async with d.worker():
        root = await d.runs.start(front, REFUND_330)
        waiting = await d.settled(root)
        assert waiting.status is RunStatus.WAITING  # type: ignore[attr-defined]
        started = time.monotonic()
        done = await d.settled(root, after=1)
        took = time.monotonic() - started
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    assert get_approval(d.db, approval).status == "expired"
    assert done.status is not RunStatus.WAITING, done  # type: ignore[attr-defined]
    assert all(status != "waiting" for _, status in shape(d, root))
    assert refunds(d.systems) == 0
    assert took < 15


async def test_cancelling_a_child_cancels_its_tree_from_the_root(d: Deployment) -> None:
    async with d.worker():
        root = await d.runs.start(tree(d), REFUND_330)
        waiting = await d.settled(root)
        (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
        leaf = get_approval(d.db, approval).run_id
        await d.runs.cancel(leaf, by="rita", reason="the customer withdrew")
        done = await d.settled(root, after=1)
    assert done.status is RunStatus.CANCELLED  # type: ignore[attr-defined]
    assert shape(d, root) == [
        ("front", "cancelled"),
        ("router", "cancelled"),
        ("refunds", "cancelled"),
    ]
    assert get_approval(d.db, approval).status == "cancelled"
    assert refunds(d.systems) == 0


async def test_a_worker_killed_mid_tree_leaves_it_to_another_which_repeats_no_side_effect(
    d: Deployment, tmp_path: Path
) -> None:
    """Worker A (a process) takes the approved tree and is SIGKILLed after the leaf's
    refund returned, before its result is on record; worker B takes the root's activation
    over, re-enters the same children, and the keyed refund acts once."""
    front = tree(d)
    async with d.worker():
        root = await d.runs.start(front, REFUND_330)
        waiting = await d.settled(root)
    (approval,) = waiting.waiting_on  # type: ignore[attr-defined]
    log = (tmp_path / "worker-a.log").open("wb")
    a = worker_process(d, log, crash_at="tool.after:1")
    try:
        await asyncio.sleep(3.0)  # A polls the queue
        assert a.poll() is None, (tmp_path / "worker-a.log").read_text()
        await approve(d).decide(approval, who=REVIEWER, approve=True, comment="ok")
        assert await asyncio.to_thread(a.wait, SETTLE) == -signal.SIGKILL
        assert shape(d, root)[0] == ("front", "running")  # left mid-tree by a dead worker
        async with d.worker():  # B
            done = await d.settled(root, after=1)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        log.close()
    assert done.status is RunStatus.SUCCEEDED, done  # type: ignore[attr-defined]
    assert shape(d, root) == [
        ("front", "succeeded"),
        ("router", "succeeded"),
        ("refunds", "succeeded"),
    ]
    assert refunds(d.systems) == 1  # the keyed refund ran twice, acted once
    leaf = run_tree(d.db, root)[2].id
    events = [e.event for e in read_journal(d.db, leaf)]
    intents = [e for e in events if isinstance(e, ToolStarted) and e.tool == "issue_refund"]
    results = [e for e in events if isinstance(e, ToolSucceeded) and e.tool == "issue_refund"]
    assert len(intents) == 2 and len({i.key for i in intents}) == 1
    assert len(results) == 1


async def test_a_tree_past_max_run_seconds_with_no_worker_alive_ends_whole(
    d: Deployment, tmp_path: Path
) -> None:
    """The only worker dies inside the leaf and none returns within the root's
    max_run_seconds: the root's durable timeout escalates the root, and the runs below it
    (driven by nothing else) end with it instead of staying `running`."""
    from steward.engines.temporal.workflow import GRACE

    front = tree(d)
    spec = load_spec_text(
        front.loaded.text.replace("max_run_seconds: 120", "max_run_seconds: 1"), "front.yaml"
    )
    front = build_agent(spec)
    log = (tmp_path / "worker-a.log").open("wb")
    a = worker_process(d, log, crash_at="tool.after:2")  # the leaf's refund returned
    try:
        await asyncio.sleep(3.0)
        root = await d.runs.start(front, REFUND_30)
        assert await asyncio.to_thread(a.wait, SETTLE) == -signal.SIGKILL
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        log.close()
    assert [status for _, status in shape(d, root)] == ["running"] * 3
    await asyncio.sleep(1 + GRACE + 1)  # no worker alive past the activation's bound
    async with d.worker():
        done = await d.settled(root)
    assert (done.status, done.reason_code) == (RunStatus.ESCALATED, "limits.max_run_seconds")  # type: ignore[attr-defined]
    assert [status for _, status in shape(d, root)] == ["escalated"] * 3
    assert {r.reason_code for r in run_tree(d.db, root)} == {"limits.max_run_seconds"}
    assert refunds(d.systems) == 1  # made by A before it died, never again


async def test_the_server_drives_trees_through_workers(d: Deployment) -> None:
    """`steward serve --engine temporal`: the RunService starts the root, decides the
    child's request and cancels a tree by a child's id, and drives nothing itself."""
    from steward.server.service import RunService

    front = tree(d)
    router = build_agent(load_spec_text(_router("router", "refunds"), "router.yaml"))
    service = RunService(d.db, d.journal, {"front": front, "router": router}, d.runs)
    service.remember_loaded()
    async with d.worker():
        first = await service.start("front", REFUND_330, {})
        second = await service.start("front", REFUND_330, {})
        (approval,) = (await d.settled(first)).waiting_on  # type: ignore[attr-defined]
        (other,) = (await d.settled(second)).waiting_on  # type: ignore[attr-defined]
        await service.approvals.decide(approval, who=REVIEWER, approve=True, comment="ok")
        done = await d.settled(first, after=1)
        child = get_approval(d.db, other).run_id
        cancelled = await service.cancel(child, by="rita", reason="duplicate ticket")
        await d.settled(second, after=1)
    assert service._tasks == {}  # no activation ran in the server
    assert done.status is RunStatus.SUCCEEDED  # type: ignore[attr-defined]
    assert [s for _, s in shape(d, first)] == ["succeeded"] * 3
    assert cancelled.status == "cancelled"
    assert [s for _, s in shape(d, second)] == ["cancelled"] * 3
    assert get_approval(d.db, other).status == "cancelled"
    assert refunds(d.systems) == 1
    assert await service.recover() == []


async def test_a_workers_specialist_is_the_version_its_label_points_at(d: Deployment) -> None:
    """As on a server's embedded engine: a delegation runs the specialist's `production`
    version, not merely its newest on record (a label rolled back to v1 keeps v2 out)."""
    from steward.store.labels import move_label

    front = tree(d)
    older = build_agent(load_spec_text(_router("router", "refunds"), "router.yaml"))
    newer = build_agent(
        load_spec_text(
            _router("router", "refunds").replace("You pass", "You always pass"), "router.yaml"
        )
    )
    Runner(EmbeddedEngine(d.db, d.journal)).remember_version(newer)  # newest on record
    assert older.version != newer.version
    move_label(d.db, "router", "production", older.version, action="rollback", by="test",
               reason="v2 answers worse")  # fmt: skip
    async with d.worker():
        root = await d.runs.start(front, REFUND_30)
        done = await d.settled(root)
    assert done.status is RunStatus.SUCCEEDED, done  # type: ignore[attr-defined]
    router_run = run_tree(d.db, root)[1]
    assert (router_run.agent, router_run.agent_version) == ("router", older.version)

    # a worker started with `--label staging` (as `steward serve --label staging`)
    from steward.engines.temporal.worker import build_worker

    move_label(d.db, "router", "staging", newer.version, action="override", by="test",
               reason="try v2 on staging")  # fmt: skip
    async with build_worker(d.runs.client, d.db, d.journal, task_queue=d.queue, label="staging"):
        staged = await d.runs.start(front, REFUND_30)
        await d.settled(staged)
    assert run_tree(d.db, staged)[1].agent_version == newer.version
