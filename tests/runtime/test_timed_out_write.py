"""A run whose write timed out escalates for a person, saying what happened; the journal
holds how the call ended, and resuming the run never repeats the write. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from steward.core.events import RunStatus, ToolFailed
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.runtime.agent import AgentRuntime
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import get_run, read_journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: payer
model: scripted
tools: [pay]
decision_authority:
  autonomous: [pay]
limits: {tool_timeout_seconds: 0.1, max_retries: 2}
"""
paid: list[str] = []


@tool(effect="write", keyed=True)
def pay(to: str, ctx: ToolContext) -> str:
    """Pay someone (the bank answers late, and pays anyway)."""
    time.sleep(0.4)
    paid.append(ctx.idempotency_key)
    return "paid"


def payer() -> AgentRuntime:
    script = [calls(("pay", {"to": "bob"})), final("paid bob", 0.9)]
    return build_agent(load_spec_text(SPEC, "payer.yaml"), [pay], model=ScriptedModel(script))


@pytest.fixture
async def runner(any_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(any_db)
    yield Runner(EmbeddedEngine(any_db, journal))
    journal.close()


async def test_a_timed_out_write_escalates_saying_it_timed_out(
    runner: Runner, any_db: Database
) -> None:
    paid.clear()
    agent = payer()
    result = await runner.run(agent, "pay bob")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "tool.outcome_unknown")
    assert "pay" in result.reason and "no result within 0.1s" in result.reason
    assert "crash" not in result.reason
    failed = [e.event for e in read_journal(any_db, result.run_id) if e.type == "tool.failed"]
    assert [
        (f.code, f.outcome_unknown, f.on_timeout) for f in failed if isinstance(f, ToolFailed)
    ] == [("tool.timeout", True, "left_running")]
    again = await runner.resume(agent, result.run_id)
    assert again.status is RunStatus.ESCALATED
    await asyncio.sleep(0.6)
    assert len(paid) == 1, "written once by the thread left running; never again"
    assert get_run(any_db, result.run_id).reason_code == "tool.outcome_unknown"
