"""The OpenAI Agents SDK adapter, with the real SDK and a scripted `Model` subclass (no network).

The agent's tools are plain SDK function tools; they count their own executions, so every
test can say how many times a refund really ran. A person decides in steward through the
store, from its own Database handle, as the console or the CLI would in another process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    FunctionTool,
    RunConfig,
    Runner,
    RunState,
    ToolOutputText,
    Usage,
    WebSearchTool,
    function_tool,
)
from agents.mcp import MCPServer
from agents.models.interface import Model
from agents.testing import ModelStep, ScriptedModel, assistant_message
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, TextContent
from mcp.types import Tool as MCPTool

import steward
from steward.adapters.openai_agents import GovernedAgent, UngovernableTool, attach, start
from steward.store.agents import set_agent_state
from steward.store.approvals import decide_approval
from steward.store.database import Database
from steward.testing.openai_agents import FakeModel, call

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai:gpt-4o-mini"

SPEC = """\
name: refund-agent
description: Refunds orders; its reasoning is an OpenAI Agents SDK agent.
model: external
tools: [lookup_order, issue_refund, send_email]
decision_authority:
  autonomous: [lookup_order]
  requires_human_review: [issue_refund, send_email]
conditions:
  - id: refund-over-500
    tool: issue_refund
    when: args.amount_usd > 500.0
    then: forbidden
    reason: Refunds over $500 are decided by the finance team, never by the agent.
  - id: small-refund
    tool: issue_refund
    when: args.amount_usd <= 50.0
    then: autonomous
    reason: Refunds up to $50 are within the agent's authority.
cost_controls:
  max_cost_per_run_usd: {budget}
"""


class Shop:
    """The agent's tools, counting what really ran."""

    def __init__(self) -> None:
        self.refunds: list[tuple[str, float]] = []
        self.lookups: list[str] = []
        self.on_lookup: Any = None

    def tools(self) -> list[FunctionTool]:
        @function_tool
        async def lookup_order(order_id: str) -> str:
            """Look an order up."""
            self.lookups.append(order_id)
            if self.on_lookup is not None:
                await self.on_lookup()
            return f"order {order_id}: paid $120, delivered damaged"

        @function_tool
        def issue_refund(order_id: str, amount_usd: float) -> str:
            """Refund an order."""
            self.refunds.append((order_id, amount_usd))
            return f"refunded ${amount_usd:.2f} on order {order_id}"

        return [lookup_order, issue_refund]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'steward.db'}"


def write_spec(tmp_path: Path, budget: float = 5.0) -> Path:
    specs = tmp_path / "agents"
    specs.mkdir(exist_ok=True)
    (specs / "refund-agent.yaml").write_text(SPEC.format(budget=budget), encoding="utf-8")
    return specs


@pytest.fixture
async def st(tmp_path: Path, db_url: str) -> AsyncIterator[steward.Steward]:
    async with await steward.open(db_url, specs=write_spec(tmp_path)) as opened:
        yield opened


def refund_agent(shop: Shop, model: Model) -> Agent[Any]:
    return Agent(
        name="refunds", instructions="Refund damaged orders.", tools=shop.tools(), model=model
    )


def person(
    db_url: str,
    approval_id: str,
    *,
    approve: bool,
    comment: str = "",
    arguments: dict[str, Any] | None = None,
) -> None:
    """A person deciding in steward, from another handle on the database."""
    db = Database.open(db_url)
    try:
        decide_approval(
            db, approval_id, approve=approve, by="human:alice", comment=comment, arguments=arguments
        )
    finally:
        db.close()


def refund(amount: float, call_id: str = "call_refund") -> list[Any]:
    return [call("issue_refund", {"order_id": "10056", "amount_usd": amount}, call_id)]


async def test_allowed_call_runs_once_and_model_calls_are_recorded(st: steward.Steward) -> None:
    shop, model = Shop(), FakeModel([refund(40)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund $40", model_name=MODEL
    )
    result = await governed.run_until_done("refund $40")
    assert shop.refunds == [("10056", 40.0)]
    assert "refunded $40.00" in str(result.final_output)
    assert await st.run_status(governed.run.id) == "succeeded"
    assert model.calls == 2
    assert governed.run.steps == 3  # two model calls and one tool call, all on the run


async def test_denied_call_never_runs_and_the_model_sees_the_reason(st: steward.Steward) -> None:
    shop, model = Shop(), FakeModel([refund(900)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund $900", model_name=MODEL
    )
    result = await governed.run_until_done("refund $900")
    assert shop.refunds == []
    assert "finance team" in model.seen[-1]
    assert "finance team" in str(result.final_output)


async def paused(
    st: steward.Steward, shop: Shop, amount: float = 120
) -> tuple[GovernedAgent, Any, steward.Waiting]:
    """A run paused natively by the SDK on a refund steward sends to review."""
    model = FakeModel([refund(amount)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund", model_name=MODEL
    )
    result = await Runner.run(governed.agent, "refund")
    [pause] = result.interruptions
    assert pause.tool_name == "issue_refund" and pause.call_id == "call_refund"
    [waiting] = await governed.pending(result.to_state())
    assert waiting.call_id == "call_refund"
    return governed, result, waiting


async def test_review_pauses_natively_then_approve_resumes_once(
    st: steward.Steward, db_url: str
) -> None:
    shop = Shop()
    governed, result, waiting = await paused(st, shop)
    assert shop.refunds == []
    assert await st.run_status(governed.run.id) == "waiting"
    person(db_url, waiting.approval_id, approve=True, comment="damaged, ok")
    state = result.to_state()
    [verdict] = await governed.apply_decisions(state, timeout=5)
    assert isinstance(verdict, steward.Allowed)
    result = await Runner.run(governed.agent, state)
    assert shop.refunds == [("10056", 120.0)]
    assert "refunded $120.00" in str(result.final_output)


async def test_review_then_reject_tells_the_model_and_never_runs(
    st: steward.Steward, db_url: str
) -> None:
    shop = Shop()
    governed, result, waiting = await paused(st, shop)
    person(db_url, waiting.approval_id, approve=False, comment="the customer already got a voucher")
    final = await governed.run_until_done(result.to_state(), timeout=5)
    assert shop.refunds == []
    assert "voucher" in str(final.final_output)
    assert await st.run_status(governed.run.id) == "succeeded"


async def test_the_run_state_is_not_the_authority(st: steward.Steward, db_url: str) -> None:
    """A program that approves on the RunState by itself does not get the call run."""
    shop = Shop()
    governed, result, waiting = await paused(st, shop)
    state = result.to_state()
    for item in state.get_interruptions():
        state.approve(item)  # no person decided in steward
    final = await Runner.run(governed.agent, state)
    assert shop.refunds == []
    assert waiting.approval_id in str(final.final_output)


async def test_edited_arguments_are_what_runs(st: steward.Steward, db_url: str) -> None:
    shop, model = Shop(), FakeModel([refund(120)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund $120", model_name=MODEL
    )

    async def a_person_edits(state: RunState[Any, Any]) -> None:
        [waiting] = await governed.pending(state)
        person(
            db_url,
            waiting.approval_id,
            approve=True,
            arguments={"order_id": "10056", "amount_usd": 80.0},
        )

    result = await governed.run_until_done("refund $120", timeout=5, on_pause=a_person_edits)
    assert shop.refunds == [("10056", 80.0)]
    assert "refunded $80.00" in str(result.final_output)


async def test_waiting_past_the_deadline_leaves_the_run_waiting(st: steward.Steward) -> None:
    shop, model = Shop(), FakeModel([refund(120)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund $120", model_name=MODEL
    )
    with pytest.raises(TimeoutError):
        await governed.run_until_done("refund $120", timeout=0.3)
    assert shop.refunds == []
    assert await st.run_status(governed.run.id) == "waiting"


async def test_kill_switch_mid_run_stops_the_run(st: steward.Steward, db_url: str) -> None:
    shop = Shop()
    model = FakeModel([[call("lookup_order", {"order_id": "10056"}, "call_lookup")], refund(40)])

    async def an_operator_pulls_the_switch() -> None:
        db = Database.open(db_url)
        try:
            set_agent_state(db, "refund-agent", by="human:ops", enabled=False, comment="incident")
        finally:
            db.close()
        await asyncio.sleep(1.1)  # the kill switch is read through a one-second cache

    shop.on_lookup = an_operator_pulls_the_switch
    governed = await start(
        st, "refund-agent", refund_agent(shop, model), "refund 10056", model_name=MODEL
    )
    with pytest.raises(steward.AgentDisabled):
        await governed.run_until_done("refund 10056")
    assert shop.lookups == ["10056"]
    assert shop.refunds == []
    assert await st.run_status(governed.run.id) == "failed"


async def test_budget_exhausted_by_the_frameworks_own_model_calls(
    tmp_path: Path, db_url: str
) -> None:
    shop = Shop()
    turns = [[call("lookup_order", {"order_id": str(n)}, f"call_{n}")] for n in range(20)]
    model = FakeModel(turns, usage=(20_000, 2_000))
    async with await steward.open(db_url, specs=write_spec(tmp_path, budget=0.05)) as st:
        governed = await start(
            st, "refund-agent", refund_agent(shop, model), "look up", model_name=MODEL
        )
        with pytest.raises(steward.BudgetExceeded):
            await governed.run_until_done("look up", max_turns=30)
        assert 0 < model.calls < 20  # stopped by steward before a call, not by the script
        assert len(shop.lookups) == model.calls
        assert await st.run_status(governed.run.id) == "failed"


async def test_restart_between_request_and_decision_runs_exactly_once(
    tmp_path: Path, db_url: str
) -> None:
    specs = write_spec(tmp_path)
    shop = Shop()
    # process 1: the agent asks, steward says review, the program saves its state and stops
    async with await steward.open(db_url, specs=specs) as st:
        governed, result, waiting = await paused(st, shop)
        saved, run_id = result.to_state().to_string(), governed.run.id

    person(db_url, waiting.approval_id, approve=True)

    # process 2: a new Steward, a new agent object, the saved state
    async def resume_saved() -> str:
        async with await steward.open(db_url, specs=specs) as st2:
            again = await attach(
                st2, run_id, refund_agent(shop, FakeModel([refund(120)])), model_name=MODEL
            )
            state = await RunState.from_string(again.agent, saved)
            await again.apply_decisions(state, timeout=5)
            return str((await Runner.run(again.agent, state)).final_output)

    assert "refunded $120.00" in await resume_saved()
    # the same saved state resumed once more (the program crashed before it forgot it)
    assert "refunded $120.00" in await resume_saved()
    assert shop.refunds == [("10056", 120.0)]


async def test_tools_of_agents_handed_off_to_are_governed(st: steward.Steward) -> None:
    shop = Shop()
    clerk = Agent(name="clerk", tools=shop.tools(), model=FakeModel([[], refund(900)]))
    triage = Agent(
        name="triage",
        handoffs=[clerk],
        model=FakeModel([[call("transfer_to_clerk", {}, "call_h")]]),
    )
    governed = await start(st, "refund-agent", triage, "refund $900", model_name=MODEL)
    result = await governed.run_until_done("refund $900")
    assert shop.refunds == []
    assert "finance team" in str(result.final_output)
    assert governed.run.steps == 4  # three model calls (two agents) and the denied call


class Mailer(MCPServer):
    """An in-process MCP server with one tool, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return "mailer"

    async def connect(self) -> None:
        return None

    async def cleanup(self) -> None:
        return None

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[MCPTool]:
        schema = {
            "type": "object",
            "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
            "required": ["to", "body"],
        }
        # the wire form: mcp 1.x and 2.x both read it
        wire = {"name": "send_email", "description": "Send an email.", "inputSchema": schema}
        return [MCPTool.model_validate(wire)]

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        self.sent.append(dict(arguments or {}))
        return CallToolResult(content=[TextContent(type="text", text="sent")])

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        raise NotImplementedError


async def test_tools_from_mcp_servers_cross_the_gate(st: steward.Steward, db_url: str) -> None:
    mailer = Mailer()
    model = FakeModel([[call("send_email", {"to": "a@example.com", "body": "sorry"}, "call_mail")]])
    agent = Agent(name="refunds", tools=[], mcp_servers=[mailer], model=model)
    governed = await start(st, "refund-agent", agent, "email the customer", model_name=MODEL)
    result = await Runner.run(governed.agent, "email the customer")
    [pause] = result.interruptions  # send_email needs review, by steward's spec
    assert pause.tool_name == "send_email" and mailer.sent == []
    [waiting] = await governed.pending(result.to_state())
    person(db_url, waiting.approval_id, approve=True)
    await governed.run_until_done(result.to_state(), timeout=5)
    assert mailer.sent == [{"to": "a@example.com", "body": "sorry"}]


async def test_a_tool_steward_cannot_gate_is_refused(st: steward.Steward) -> None:
    agent = Agent(name="refunds", tools=[WebSearchTool()], model=FakeModel([]))
    with pytest.raises(UngovernableTool, match="WebSearchTool"):
        await start(st, "refund-agent", agent, "search")


@pytest.mark.slow
def test_the_example_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "openai_agents_refund.py")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "run " in done.stdout and "status: succeeded" in done.stdout
    assert "refunds executed: 1" in done.stdout


async def test_streamed_model_calls_are_settled_from_the_stream(
    tmp_path: Path, db_url: str
) -> None:
    """Three streamed model calls fit a $0.05 budget only if each is settled with the usage
    its stream reports: unsettled, each would be charged its whole reservation (~$0.02)."""
    usage = Usage(requests=1, input_tokens=300, output_tokens=20, total_tokens=320)
    model = ScriptedModel(
        [
            ModelStep(output=[call("lookup_order", {"order_id": "1"}, "call_1")], usage=usage),
            ModelStep(output=[call("lookup_order", {"order_id": "2"}, "call_2")], usage=usage),
            ModelStep(output=[assistant_message("both looked up")], usage=usage),
        ]
    )
    shop = Shop()
    async with await steward.open(db_url, specs=write_spec(tmp_path, budget=0.05)) as st:
        governed = await start(
            st, "refund-agent", refund_agent(shop, model), "look up", model_name=MODEL
        )
        streamed = Runner.run_streamed(governed.agent, "look up")
        async for _event in streamed.stream_events():
            pass
        assert streamed.final_output == "both looked up"
        assert shop.lookups == ["1", "2"]
        assert governed.run.steps == 5  # three model calls and two tool calls


async def test_a_run_wide_model_override_is_governed_too(st: steward.Steward) -> None:
    shop, unused, override = Shop(), FakeModel([]), FakeModel([refund(40)])
    governed = await start(
        st, "refund-agent", refund_agent(shop, unused), "refund $40", model_name=MODEL
    )
    result = await governed.run_until_done("refund $40", run_config=RunConfig(model=override))
    assert "refunded $40.00" in str(result.final_output)
    assert (unused.calls, override.calls) == (0, 2)
    assert governed.run.steps == 3  # both model calls of the override were recorded


async def test_parallel_calls_one_allowed_one_reviewed_each_run_once(
    st: steward.Steward, db_url: str
) -> None:
    shop = Shop()
    turn = [call("lookup_order", {"order_id": "10056"}, "call_lookup"), *refund(120)]
    governed = await start(
        st, "refund-agent", refund_agent(shop, FakeModel([turn])), "refund", model_name=MODEL
    )

    async def a_person_approves(state: RunState[Any, Any]) -> None:
        for waiting in await governed.pending(state):
            person(db_url, waiting.approval_id, approve=True)

    result = await governed.run_until_done("refund", timeout=5, on_pause=a_person_approves)
    assert shop.lookups == ["10056"]
    assert shop.refunds == [("10056", 120.0)]
    assert "refunded $120.00" in str(result.final_output)


async def test_a_tool_that_raises_is_recorded_failed_and_never_repeated(
    st: steward.Steward,
) -> None:
    attempts: list[str] = []

    @function_tool(failure_error_function=None)
    def issue_refund(order_id: str, amount_usd: float) -> str:
        """Refund an order."""
        attempts.append(order_id)
        raise RuntimeError("payment gateway down")

    agent = Agent(name="refunds", tools=[issue_refund], model=FakeModel([refund(40)]))
    governed = await start(st, "refund-agent", agent, "refund $40", model_name=MODEL)
    with pytest.raises(Exception, match="payment gateway down"):
        await Runner.run(governed.agent, "refund $40")
    again = await governed.run.decide(
        "issue_refund", {"order_id": "10056", "amount_usd": 40}, call_id="call_refund"
    )
    assert isinstance(again, steward.Failed) and "payment gateway down" in again.error
    assert attempts == ["10056"]


@pytest.mark.slow
def test_restart_in_new_processes_runs_the_approved_call_exactly_once(
    tmp_path: Path, db_url: str
) -> None:
    write_spec(tmp_path)
    worker = str(Path(__file__).with_name("openai_agents_restart_worker.py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENAI_AGENTS_DISABLE_TRACING": "1"}

    def process(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, worker, *args], capture_output=True, text=True, timeout=120, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run_id, approval_id = process("ask", str(tmp_path)).split()
    assert not (tmp_path / "refunds.txt").exists()
    person(db_url, approval_id, approve=True)
    assert "refunded $120.00" in process("resume", str(tmp_path), run_id)
    assert "refunded $120.00" in process("resume", str(tmp_path), run_id)  # the same state again
    assert (tmp_path / "refunds.txt").read_text().splitlines() == ["10056 120.0"]


async def test_structured_tool_output_is_recorded_as_json(st: steward.Steward) -> None:
    """The facade records JSON only: the SDK's output models are recorded as their JSON
    (before, recording raised after the tool had run and the run failed)."""

    @function_tool
    def lookup_order(order_id: str) -> list[ToolOutputText]:
        """Look an order up."""
        return [ToolOutputText(text=f"order {order_id}: delivered")]

    model = FakeModel([[call("lookup_order", {"order_id": "7"}, "call_lookup")]])
    governed = await start(
        st,
        "refund-agent",
        Agent(name="r", tools=[lookup_order], model=model),
        "look",
        model_name=MODEL,
    )
    await governed.run_until_done("look")
    assert "order 7: delivered" in model.seen[-1]
    assert await st.run_status(governed.run.id) == "succeeded"
