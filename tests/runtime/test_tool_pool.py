"""One pool of tool threads per agent, however many runs it makes: a run's activation
must not start threads of its own that idle on for a minute after it ends. (Resuming
10,000 waiting runs left 20,000 idle threads behind and cost more per run than 1,000.)"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest

from steward.core.events import RunStatus
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: pooled
model: scripted
tools: [look]
decision_authority:
  autonomous: [look]
limits: {tool_workers: 2}
"""
RUNS = 12


@tool(effect="read")
def look(order: str) -> str:  # synchronous: it runs on the agent's tool threads
    return f"order {order}: shipped"


def tool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "steward-tool-pooled"]


@pytest.fixture
async def runner(sqlite_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(sqlite_db)
    yield Runner(EmbeddedEngine(sqlite_db, journal))
    journal.close()


async def test_runs_of_one_agent_share_its_bounded_pool_of_tool_threads(runner: Runner) -> None:
    script = [calls(("look", {"order": "1"}), ("look", {"order": "2"})), final("shipped")]
    agent = build_agent(
        load_spec_text(SPEC, "pooled.yaml"), [look], model=ScriptedModel(script * RUNS)
    )
    before = len(tool_threads())
    for _ in range(RUNS):
        result = await runner.run(agent, "where are my orders?")
        assert result.status is RunStatus.SUCCEEDED, result
    assert len(tool_threads()) - before <= 2  # limits.tool_workers, not 2 per run
