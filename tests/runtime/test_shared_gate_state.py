"""One gate state per database in a process: every agent object and every version of an
agent (a run resumed with a rebuilt agent included) counts against the same limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from steward.core.events import RunStatus
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.runtime.agent import AgentRuntime
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: pinger
model: scripted
description: version %d
tools: [ping, pay]
decision_authority:
  autonomous: [ping]
  requires_human_review: [pay]
rate_limits: {ping: 3/hour}
"""

PINGS: list[int] = []


@tool(effect="write", keyed=True)
async def ping(version: int) -> str:
    PINGS.append(version)
    return "pong"


@tool(effect="write", keyed=True, cost_usd=1.0)
async def pay() -> str:
    return "paid"


def version(number: int, script: list[object] | None = None) -> AgentRuntime:
    loaded = load_spec_text(SPEC % number, "pinger.yaml")
    model = ScriptedModel(script or [calls(("ping", {"version": number})), final("ok")])  # type: ignore[arg-type]
    return build_agent(loaded, [ping, pay], model=model)


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    journal = Journal(any_db)
    yield journal
    journal.close()


async def test_versions_and_runners_of_one_agent_share_one_rate_window(
    any_db: Database, journal: Journal
) -> None:
    PINGS.clear()
    first, second = version(1), version(2)
    assert first.version != second.version
    runners = [Runner(EmbeddedEngine(any_db, journal)), Runner(EmbeddedEngine(any_db, journal))]
    results = await asyncio.gather(
        *(runners[i % 2].run((first, second)[i % 2], f"ping {i}") for i in range(12))
    )
    assert all(r.status is RunStatus.SUCCEEDED for r in results)
    assert len(PINGS) == 3
    denied = [r for r in results if r.denials == ("rate_limit.exceeded",)]
    assert len(denied) == 9


async def test_a_resumed_run_with_a_rebuilt_agent_uses_the_same_window(
    any_db: Database, journal: Journal
) -> None:
    PINGS.clear()
    runner = Runner(EmbeddedEngine(any_db, journal))
    script = [calls(("pay", {})), calls(("ping", {"version": 1})), final("ok")]
    waiting = await runner.run(version(1, script), "pay then ping")
    assert waiting.status is RunStatus.WAITING
    for i in range(3):  # the window fills while the run waits
        await runner.run(version(1), f"ping {i}")
    decide_approval(any_db, waiting.waiting_on[0], approve=True, by="alice")
    done = await Runner(EmbeddedEngine(any_db, journal)).resume(version(1, script), waiting.run_id)
    assert done.denials == ("rate_limit.exceeded",)
    assert len(PINGS) == 3
