"""The kill switch stops its part of the tree mid-run: a run whose agent is disabled
while it runs stops at its next step (no more model turns), ending `escalated` with
reason code `agent.disabled`; in a tree, the parent's delegate call gets that ending as
the child's answer and the parent goes on. The model here blocks until the test has
turned the switch off, so the switch flips while the run is in the middle of a turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from delegation_tree import ROOT_SAYS, Refunds, calls, final, refund_tool, spec, three_levels

from steward.core.events import RunStatus
from steward.core.messages import ModelResponse
from steward.engines.embedded import EmbeddedEngine
from steward.models.protocol import ModelRequest
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.agents import set_agent_state
from steward.store.runs import get_run, run_tree
from steward.testing import ScriptedModel


class BlockingModel(ScriptedModel):
    """A scripted model whose first turn waits until `release` is set."""

    def __init__(self, responses: list[ModelResponse]) -> None:
        super().__init__(responses)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def respond(self, request: ModelRequest) -> ModelResponse:
        if not self.entered.is_set():
            self.entered.set()
            await asyncio.wait_for(self.release.wait(), 10)
        return await super().respond(request)


@pytest.fixture
async def journal(any_db: Database) -> AsyncIterator[Journal]:
    j = Journal(any_db)
    yield j
    j.close()


def _disable(runner: Runner, db: Database, name: str) -> None:
    """What `steward agents disable` / the server does: store the switch; this process's
    cache forgets the agent (another process sees it within the cache's second)."""
    set_agent_state(db, name, by="admin:ops", enabled=False, comment="incident 42")
    runner.states.forget(name)


async def test_disabling_a_specialist_two_hops_down_stops_it_and_its_parent_goes_on(
    any_db: Database, journal: Journal
) -> None:
    refunds = Refunds()
    deployment = three_levels(any_db, journal, refunds)
    model = BlockingModel([calls(("refund", {"order": "10114"})), final("refunded 10114")])
    billing_spec = load_spec_text(spec("billing", ["refund"], autonomous=["refund"]), "b.yaml")
    deployment.agents["billing"] = build_agent(billing_spec, [refund_tool(refunds)], model=model)
    runner = deployment.runner
    root = asyncio.create_task(runner.run(deployment.agents["triage"], ROOT_SAYS, run_id="run_ks"))
    await asyncio.wait_for(model.entered.wait(), 10)  # billing is mid-turn, orders waits on it
    _disable(runner, any_db, "billing")
    model.release.set()
    result = await asyncio.wait_for(root, 20)

    tree = run_tree(any_db, "run_ks")
    assert [r.agent for r in tree] == ["triage", "orders", "billing"]
    billing = tree[2]
    assert (billing.status, billing.reason_code) == ("escalated", "agent.disabled")
    assert "billing" in billing.reason and "kill switch" in billing.reason
    assert len(model.requests) == 1  # no model turn after the switch flipped
    assert refunds.done == []  # its proposed refund never ran
    # orders got billing's ending as its delegate call's answer and went on
    orders = get_run(any_db, tree[1].id)
    assert (orders.status, orders.output) == ("succeeded", "orders done")
    assert result.status is RunStatus.SUCCEEDED


async def test_disabling_an_agent_stops_its_single_run_at_the_next_step(
    any_db: Database, journal: Journal
) -> None:
    loaded = load_spec_text(spec("solo", ["refund"], autonomous=["refund"]), "solo.yaml")
    refunds = Refunds()
    model = BlockingModel([calls(("refund", {"order": "1"})), final("done")])
    solo = build_agent(loaded, [refund_tool(refunds)], model=model)
    runner = Runner(EmbeddedEngine(any_db, journal))
    run = asyncio.create_task(runner.run(solo, "refund order 1", run_id="run_solo"))
    await asyncio.wait_for(model.entered.wait(), 10)
    _disable(runner, any_db, "solo")
    model.release.set()
    result = await asyncio.wait_for(run, 20)
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "agent.disabled")
    assert len(model.requests) == 1 and refunds.done == []
    row = get_run(any_db, "run_solo")
    assert (row.status, row.reason_code) == ("escalated", "agent.disabled")
