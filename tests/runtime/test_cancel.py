"""Cancelling runs: from outside (waiting, orphaned running, still running elsewhere) and
by cancelling the task that drives one, mid tool call included; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from steward.core.errors import ConflictError, NotFoundError
from steward.core.events import (
    ApprovalDecided,
    ModelResponded,
    RunFinished,
    RunStarted,
    RunStatus,
    ToolFailed,
    ToolStarted,
)
from steward.core.lifecycle import SHUTDOWN
from steward.engines.cancel import cancel_run
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval, get_approval
from steward.store.chain import verify_chain
from steward.store.runs import get_run, list_runs, read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: payer
model: scripted
tools: [transfer, wire, slow_read]
decision_authority:
  autonomous: [wire, slow_read]
  requires_human_review: [transfer]
"""

effects: list[str] = []


@tool(effect="write", keyed=True)
async def transfer(to: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    effects.append(f"transfer {to}")
    return {"sent": amount}


@tool(effect="write")
async def wire(to: str) -> str:
    effects.append(f"wire {to} begun")
    await asyncio.sleep(10)  # the bank is slow; the run is cancelled meanwhile
    effects.append(f"wire {to} done")
    return "wired"


@tool(effect="read")
async def slow_read() -> str:
    await asyncio.sleep(10)
    return "read"


def payer(model: ScriptedModel) -> Any:
    return build_agent(load_spec_text(SPEC, "payer.yaml"), [transfer, wire, slow_read], model=model)


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()


def events(db: Database, run_id: str) -> list[Any]:
    return [e.event for e in read_journal(db, run_id)]


def _runs(db: Database) -> list[str]:
    return [r.id for r in list_runs(db)]


def chain_ok(db: Database) -> bool:
    with db.reader.connect() as connection:
        return verify_chain(connection).ok


async def until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_cancelling_a_waiting_run_cancels_its_approvals(
    any_db: Database, journal: Journal
) -> None:
    effects.clear()
    model = ScriptedModel([calls(("transfer", {"to": "bob", "amount": 5})), final("sent")])
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = payer(model)
    waiting = await runner.run(agent, "send bob 5")
    assert waiting.status is RunStatus.WAITING
    row = cancel_run(any_db, journal, waiting.run_id, by="alice", reason="customer withdrew")
    assert (row.status, row.reason_code) == ("cancelled", "run.cancelled")
    assert row.reason == "cancelled by alice: customer withdrew"
    assert row.steps == 1 and row.finished_at is not None
    approval = get_approval(any_db, waiting.waiting_on[0])
    assert (approval.status, approval.decided_by) == ("cancelled", "alice")
    with pytest.raises(ConflictError, match="already cancelled"):
        decide_approval(any_db, approval.id, approve=True, by="bob")
    recorded = events(any_db, waiting.run_id)
    decided = [e for e in recorded if isinstance(e, ApprovalDecided)]
    assert [(d.approval_id, d.outcome) for d in decided] == [(approval.id, "cancelled")]
    # resuming does nothing: the finished result comes back, nothing is appended or run
    again = await runner.resume(agent, waiting.run_id)
    assert (again.status, again.reason_code) == (RunStatus.CANCELLED, "run.cancelled")
    await journal.flush()
    assert events(any_db, waiting.run_id) == recorded
    assert effects == [] and len(model.requests) == 1
    assert chain_ok(any_db)


async def test_a_finished_or_unknown_run_cannot_be_cancelled(
    any_db: Database, journal: Journal
) -> None:
    done = await Runner(EmbeddedEngine(any_db, journal)).run(
        payer(ScriptedModel([final("hi")])), "hello"
    )
    with pytest.raises(ConflictError, match=f"run {done.run_id} already succeeded"):
        cancel_run(any_db, journal, done.run_id, by="alice", reason="too late")
    with pytest.raises(NotFoundError):
        cancel_run(any_db, journal, "run_nope", by="alice", reason="who?")
    assert get_run(any_db, done.run_id).status == "succeeded"


async def test_an_orphaned_running_run_can_be_cancelled(any_db: Database, journal: Journal) -> None:
    # a process started the run, took one model turn and died: the run stays `running`
    agent = payer(ScriptedModel([]))
    journal.append("run_orphan", RunStarted(agent.name, agent.version, "send bob 5"))
    journal.append("run_orphan", ModelResponded(0, calls(("wire", {"to": "bob"})), 1.0))
    await journal.flush()
    assert get_run(any_db, "run_orphan").status == "running"
    row = cancel_run(any_db, journal, "run_orphan", by="ops", reason="its worker died")
    assert (row.status, row.steps) == ("cancelled", 1)
    result = await Runner(EmbeddedEngine(any_db, journal)).resume(agent, "run_orphan")
    assert result.status is RunStatus.CANCELLED and effects.count("wire bob begun") == 0


async def test_a_run_cancelled_elsewhere_stops_before_its_next_step(
    any_db: Database, journal: Journal
) -> None:
    effects.clear()
    slow = ScriptedModel([calls(("wire", {"to": "eve"})), final("wired")], delay=0.3)
    task = asyncio.create_task(Runner(EmbeddedEngine(any_db, journal)).run(payer(slow), "wire eve"))
    await until(lambda: slow.requests)  # the model is thinking
    await journal.flush()
    run_id = next(iter(_runs(any_db)))
    cancel_run(any_db, journal, run_id, by="alice", reason="wrong payee")
    result = await task
    assert (result.status, result.reason) == (
        RunStatus.CANCELLED,
        "cancelled by alice: wrong payee",
    )
    assert effects == []  # the proposed wire never ran
    await journal.flush()
    finishes = [e for e in events(any_db, run_id) if isinstance(e, RunFinished)]
    assert [f.status for f in finishes] == [RunStatus.CANCELLED]


@pytest.mark.parametrize(
    ("tool_name", "arguments", "unknown"),
    [("wire", {"to": "eve"}, True), ("slow_read", {}, False)],
)
async def test_cancelling_the_task_mid_call_records_the_call_and_the_finish(
    any_db: Database, journal: Journal, tool_name: str, arguments: dict[str, Any], unknown: bool
) -> None:
    effects.clear()
    model = ScriptedModel([calls((tool_name, arguments)), final("done")])
    runner = Runner(EmbeddedEngine(any_db, journal))
    agent = payer(model)
    task = asyncio.create_task(runner.run(agent, "go"))
    started = asyncio.get_running_loop().time()
    await until(lambda: effects or asyncio.get_running_loop().time() - started > 0.3)
    # a server says why; a bare cancel (a loop torn down) gets a generic reason
    said = "cancelled by alice: wrong payee" if unknown else None
    task.cancel(said)
    with pytest.raises(asyncio.CancelledError):
        await task
    [run_id] = _runs(any_db)
    row = get_run(any_db, run_id)  # durable before the cancellation went on
    assert (row.status, row.reason_code) == ("cancelled", "run.cancelled")
    assert row.reason == (said or "the task running the run was cancelled")
    recorded = events(any_db, run_id)
    [failed] = [e for e in recorded if isinstance(e, ToolFailed)]
    assert (failed.tool, failed.code, failed.outcome_unknown) == (
        tool_name,
        "tool.cancelled",
        unknown,
    )
    kinds = [type(e).__name__ for e in recorded]
    if unknown:  # the write-ahead intent precedes the side effect and the record of it
        assert kinds.index("ToolStarted") < kinds.index("ToolFailed")
        assert effects == ["wire eve begun"]
    else:
        assert not any(isinstance(e, ToolStarted) for e in recorded)
    assert kinds[-1] == "RunFinished" and kinds.count("RunFinished") == 1
    again = await runner.resume(agent, run_id)
    assert again.status is RunStatus.CANCELLED and len(model.requests) == 1
    assert effects.count("wire eve done") == 0 and chain_ok(any_db)


async def test_the_first_finish_stands(any_db: Database, journal: Journal) -> None:
    """A run finished by a cancel stays cancelled if its last activation, racing, also
    reports a finish: the projection and the replayed history keep the first."""
    waiting = await Runner(EmbeddedEngine(any_db, journal)).run(
        payer(ScriptedModel([calls(("transfer", {"to": "bob", "amount": 5}))])), "send"
    )
    cancel_run(any_db, journal, waiting.run_id, by="alice", reason="stop")
    journal.append(waiting.run_id, RunFinished(RunStatus.SUCCEEDED, "sent", 0.9))
    await journal.flush()
    assert get_run(any_db, waiting.run_id).status == "cancelled"
    result = await Runner(EmbeddedEngine(any_db, journal)).resume(
        payer(ScriptedModel([])), waiting.run_id
    )
    assert (result.status, result.reason_code) == (RunStatus.CANCELLED, "run.cancelled")


async def test_cancelling_the_task_of_a_queued_run_finishes_it_before_it_starts(
    any_db: Database, journal: Journal
) -> None:
    """A run waiting for a slot is on record (`queued`): cancelling its task ends it
    `cancelled` there, so no recovery starts it later; a stop (shutdown) leaves it queued."""
    spec = SPEC + "limits: {max_concurrent_runs: 1}\n"
    script = [calls(("slow_read", {})), final("done")]
    agent = build_agent(
        load_spec_text(spec, "payer.yaml"), [transfer, wire, slow_read],
        model=ScriptedModel(script * 3),
    )  # fmt: skip
    runner = Runner(EmbeddedEngine(any_db, journal))
    holder = asyncio.create_task(runner.run(agent, "hold", run_id="run_holder"))
    await until(lambda: "run_holder" in _runs(any_db))
    waiting = asyncio.create_task(runner.run(agent, "later", run_id="run_cancelled"))
    stopped = asyncio.create_task(runner.run(agent, "later", run_id="run_stopped"))
    await until(lambda: {"run_cancelled", "run_stopped"} <= set(_runs(any_db)))
    assert get_run(any_db, "run_cancelled").status == "queued"
    waiting.cancel("cancelled by alice: not needed")
    stopped.cancel(SHUTDOWN)
    holder.cancel(SHUTDOWN)
    await asyncio.gather(holder, waiting, stopped, return_exceptions=True)
    row = get_run(any_db, "run_cancelled")
    assert (row.status, row.reason) == ("cancelled", "cancelled by alice: not needed")
    assert [type(e).__name__ for e in events(any_db, "run_cancelled")] == [
        "RunQueued",
        "RunFinished",
    ]
    assert get_run(any_db, "run_stopped").status == "queued"  # a stop is not a cancel
