"""The OpenAI Agents SDK adapter, with the real SDK and a scripted `Model` subclass (no network).

The agent's tools are plain SDK function tools; they count their own executions, so every
test can say how many times a refund really ran. A person decides in steward through the
store, from its own Database handle, as the console or the CLI would in another process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, FunctionTool, Runner, RunState, WebSearchTool, function_tool
from agents.mcp import MCPServer
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, TextContent
from mcp.types import Tool as MCPTool

import steward
from steward.adapters.openai_agents import UngovernableTool, govern, run_governed
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


def refund_agent(shop: Shop, model: FakeModel) -> Agent[Any]:
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
    run = await st.start_run("refund-agent", "refund order 10056, $40")
    result = await run_governed(
        refund_agent(shop, model), "refund order 10056, $40", run=run, model_name=MODEL
    )
    assert shop.refunds == [("10056", 40.0)]
    assert "refunded $40.00" in str(result.final_output)
    assert await st.run_status(run.id) == "succeeded"
    usage = await st.run_usage(run.id)
    assert usage.model_calls == 2 and usage.cost_usd > 0
    assert usage.steps >= 3  # two model calls and one tool call


async def test_denied_call_never_runs_and_the_model_sees_the_reason(st: steward.Steward) -> None:
    shop, model = Shop(), FakeModel([refund(900)])
    run = await st.start_run("refund-agent", "refund $900")
    result = await run_governed(refund_agent(shop, model), "refund $900", run=run, model_name=MODEL)
    assert shop.refunds == []
    assert "finance team" in model.seen[-1]
    assert "finance team" in str(result.final_output)


async def test_review_pauses_natively_then_approve_resumes_once(
    st: steward.Steward, db_url: str
) -> None:
    shop, model = Shop(), FakeModel([refund(120)])
    run = await st.start_run("refund-agent", "refund $120")
    governed = govern(refund_agent(shop, model), run, model_name=MODEL)
    result = await Runner.run(governed.agent, "refund $120")
    [pause] = result.interruptions
    assert pause.tool_name == "issue_refund" and shop.refunds == []
    waiting = await run.resume("call_refund", execute=False)
    assert isinstance(waiting, steward.Waiting)
    assert await st.run_status(run.id) == "waiting"

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
    shop, model = Shop(), FakeModel([refund(120)])
    run = await st.start_run("refund-agent", "refund $120")
    governed = govern(refund_agent(shop, model), run, model_name=MODEL)
    result = await Runner.run(governed.agent, "refund $120")
    waiting = await run.resume("call_refund", execute=False)
    assert isinstance(waiting, steward.Waiting)
    person(db_url, waiting.approval_id, approve=False, comment="the customer already got a voucher")
    state = result.to_state()
    [verdict] = await governed.apply_decisions(state, timeout=5)
    assert isinstance(verdict, steward.Denied)
    result = await Runner.run(governed.agent, state)
    assert shop.refunds == []
    assert "voucher" in model.seen[-1]


async def test_edited_arguments_are_what_runs(st: steward.Steward, db_url: str) -> None:
    shop, model = Shop(), FakeModel([refund(120)])
    run = await st.start_run("refund-agent", "refund $120")

    async def decide_when_paused(state: RunState[Any, Any]) -> None:
        waiting = await run.resume("call_refund", execute=False)
        assert isinstance(waiting, steward.Waiting)
        person(
            db_url,
            waiting.approval_id,
            approve=True,
            arguments={"order_id": "10056", "amount_usd": 80.0},
        )

    result = await run_governed(
        refund_agent(shop, model),
        "refund $120",
        run=run,
        model_name=MODEL,
        timeout=5,
        on_pause=decide_when_paused,
    )
    assert shop.refunds == [("10056", 80.0)]
    assert "refunded $80.00" in str(result.final_output)


async def test_kill_switch_mid_run_stops_the_next_call(st: steward.Steward, db_url: str) -> None:
    shop = Shop()
    model = FakeModel([[call("lookup_order", {"order_id": "10056"}, "call_lookup")], refund(40)])

    async def operator_pulls_the_switch() -> None:
        db = Database.open(db_url)
        try:
            set_agent_state(db, "refund-agent", by="human:ops", enabled=False, comment="incident")
        finally:
            db.close()

    shop.on_lookup = operator_pulls_the_switch
    run = await st.start_run("refund-agent", "refund order 10056")
    with pytest.raises(steward.StewardError):
        await run_governed(
            refund_agent(shop, model), "refund order 10056", run=run, model_name=MODEL
        )
    assert shop.lookups == ["10056"]
    assert shop.refunds == []
    assert await st.run_status(run.id) != "succeeded"


async def test_budget_exhausted_by_the_frameworks_own_model_calls(
    tmp_path: Path, db_url: str
) -> None:
    shop = Shop()
    model = FakeModel(
        [[call("lookup_order", {"order_id": str(n)}, f"call_{n}")] for n in range(20)],
        usage=(20_000, 2_000),
    )
    async with await steward.open(db_url, specs=write_spec(tmp_path, budget=0.01)) as st:
        run = await st.start_run("refund-agent", "look everything up")
        with pytest.raises(steward.BudgetExceeded):
            await run_governed(
                refund_agent(shop, model),
                "look everything up",
                run=run,
                model_name=MODEL,
                max_turns=30,
            )
        assert 0 < model.calls < 20  # stopped by steward, not by the script's end
        assert len(shop.lookups) < 20
        assert await st.run_status(run.id) == "failed"


async def test_restart_between_request_and_decision_runs_exactly_once(
    tmp_path: Path, db_url: str
) -> None:
    specs = write_spec(tmp_path)
    shop = Shop()
    # process 1: the agent asks, steward says review, the program saves its state and stops
    async with await steward.open(db_url, specs=specs) as st:
        run = await st.start_run("refund-agent", "refund $120")
        governed = govern(refund_agent(shop, FakeModel([refund(120)])), run, model_name=MODEL)
        result = await Runner.run(governed.agent, "refund $120")
        saved, run_id = result.to_state().to_string(), run.id
        waiting = await run.resume("call_refund", execute=False)
        assert isinstance(waiting, steward.Waiting)

    person(db_url, waiting.approval_id, approve=True)

    # process 2: a new Steward, a new agent object, the saved state
    async def resume_once() -> str:
        async with await steward.open(db_url, specs=specs) as st2:
            run2 = await st2.attach(run_id)
            governed2 = govern(refund_agent(shop, FakeModel([refund(120)])), run2, model_name=MODEL)
            state = await RunState.from_string(governed2.agent, saved)
            await governed2.apply_decisions(state, timeout=5)
            resumed = await Runner.run(governed2.agent, state)
            return str(resumed.final_output)

    assert "refunded $120.00" in await resume_once()
    # the same saved state resumed again (the program crashed before it forgot it)
    assert "refunded $120.00" in await resume_once()
    assert shop.refunds == [("10056", 120.0)]


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
        return [MCPTool(name="send_email", description="Send an email.", input_schema=schema)]

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
    run = await st.start_run("refund-agent", "email the customer")
    governed = govern(agent, run, model_name=MODEL)
    result = await Runner.run(governed.agent, "email the customer")
    [pause] = result.interruptions  # send_email needs review, by steward's spec
    assert pause.tool_name == "send_email" and mailer.sent == []
    waiting = await run.resume("call_mail", execute=False)
    assert isinstance(waiting, steward.Waiting)
    person(db_url, waiting.approval_id, approve=True)
    state = result.to_state()
    await governed.apply_decisions(state, timeout=5)
    await Runner.run(governed.agent, state)
    assert mailer.sent == [{"to": "a@example.com", "body": "sorry"}]


async def test_a_tool_steward_cannot_gate_is_refused(st: steward.Steward) -> None:
    run = await st.start_run("refund-agent", "search")
    agent = Agent(name="refunds", tools=[WebSearchTool()], model=FakeModel([]))
    with pytest.raises(UngovernableTool, match="WebSearchTool"):
        govern(agent, run)


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
