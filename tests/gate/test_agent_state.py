"""The kill switch and progressive autonomy: in the gate, the runner, the store and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from steward.cli.main import app
from steward.core.agent_state import AgentState, Autonomy
from steward.core.events import AgentStateChanged, RunStatus
from steward.core.messages import ToolCall
from steward.engines.embedded import EmbeddedEngine
from steward.gate import CallStatus, Gate, GateConfig
from steward.gate.stages.agent_state import AgentStateCache
from steward.policy import compile_policy
from steward.runtime import Runner, build_agent
from steward.runtime.runner import AgentDisabled
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.agents import agent_state, list_agents, set_agent_state
from steward.store.chain import verify_chain
from steward.store.limits import MemoryLimits, SqlLimits
from steward.testing import MemoryScope, ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: ops
model: scripted
tools: [read, write, pay, wipe]
decision_authority:
  autonomous: [read, write]
  requires_human_review: [pay]
  forbidden: [wipe]
"""


@tool(effect="read")
async def read() -> str:
    return "r"


@tool(effect="write", keyed=True)
async def write() -> str:
    return "w"


@tool(effect="write", keyed=True)
async def pay() -> str:
    return "p"


@tool(effect="write")
async def wipe() -> str:
    return "x"


TOOLS = {t.name: t for t in (read, write, pay, wipe)}


def gate_in(state: AgentState) -> Gate:
    loaded = load_spec_text(SPEC, "ops.yaml")
    policy = compile_policy(loaded.spec, loaded.version, TOOLS)
    return Gate(policy, TOOLS, GateConfig(states=lambda _agent: state, limits=MemoryLimits()))


@pytest.mark.parametrize(
    ("state", "tool", "status", "code"),
    [
        (AgentState(enabled=False), "read", CallStatus.DENIED, "agent.disabled"),
        (AgentState(mode=Autonomy.ADVISORY), "read", CallStatus.EXECUTED, "tier.autonomous"),
        (AgentState(mode=Autonomy.ADVISORY), "write", CallStatus.WAITING, "autonomy.advisory"),
        (
            AgentState(mode=Autonomy.SUPERVISED),
            "pay",
            CallStatus.WAITING,
            "tier.requires_human_review",
        ),
        (AgentState(mode=Autonomy.AUTONOMOUS), "pay", CallStatus.EXECUTED, "autonomy.autonomous"),
        (AgentState(mode=Autonomy.AUTONOMOUS), "wipe", CallStatus.DENIED, "tool.forbidden"),
    ],
)
async def test_the_gate_applies_kill_switch_and_mode(
    state: AgentState, tool: str, status: CallStatus, code: str
) -> None:
    outcome = await gate_in(state).process(MemoryScope(), ToolCall("c", tool, {}), 0)
    assert outcome.status is status
    assert outcome.decision.primary_code == code


def test_an_unreadable_state_fails_closed() -> None:
    def broken(_agent: str) -> AgentState:
        raise RuntimeError("database gone")

    state = AgentStateCache(broken)("ops")
    assert state.enabled is False and state.unknown == "RuntimeError: database gone"


def test_a_read_that_fails_once_is_asked_again_before_failing_closed() -> None:
    """A pooled connection the database dropped fails one read; the next gets a new one."""
    failures = [RuntimeError("connection terminated")]

    def flaky(_agent: str) -> AgentState:
        if failures:
            raise failures.pop()
        return AgentState(enabled=True)

    state = AgentStateCache(flaky)("ops")
    assert state.enabled is True and state.unknown == ""


async def test_a_gate_built_by_hand_obeys_the_stored_kill_switch(sqlite_db: Database) -> None:
    """No Runner: the gate takes the store's kill switch and limits at construction, so
    a switch flipped in the store (by another process, say) bites."""
    loaded = load_spec_text(SPEC, "ops.yaml")
    policy = compile_policy(loaded.spec, loaded.version, TOOLS)
    states = AgentStateCache(lambda name: agent_state(sqlite_db, name), ttl=0.0)
    gate = Gate(policy, TOOLS, GateConfig(states=states, limits=SqlLimits(sqlite_db)))
    before = await gate.process(MemoryScope(), ToolCall("c1", "read", {}), 0)
    set_agent_state(sqlite_db, "ops", by="alice", enabled=False, comment="incident")
    after = await gate.process(MemoryScope(), ToolCall("c2", "read", {}), 1)
    assert before.status is CallStatus.EXECUTED
    assert (after.status, after.decision.primary_code) == (CallStatus.DENIED, "agent.disabled")


def test_a_gate_cannot_be_built_without_its_state() -> None:
    loaded = load_spec_text(SPEC, "ops.yaml")
    policy = compile_policy(loaded.spec, loaded.version, TOOLS)
    with pytest.raises(TypeError):
        Gate(policy, TOOLS)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        GateConfig(states=lambda _agent: AgentState())  # type: ignore[call-arg]


@pytest.fixture
async def runner(sqlite_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(sqlite_db)
    yield Runner(EmbeddedEngine(sqlite_db, journal))
    journal.close()


def agent(script: list[Any]) -> Any:
    return build_agent(
        load_spec_text(SPEC, "ops.yaml"), list(TOOLS.values()), model=ScriptedModel(script)
    )


async def test_disabling_stops_new_runs_and_denies_pending_calls(
    runner: Runner, sqlite_db: Database
) -> None:
    ops = agent([calls(("pay", {})), final("could not pay")])
    waiting = await runner.run(ops, "pay")
    assert waiting.status is RunStatus.WAITING
    set_agent_state(sqlite_db, "ops", by="alice", enabled=False, comment="incident")
    runner.states.forget("ops")
    with pytest.raises(AgentDisabled):
        await runner.run(agent([final("hi")]), "hello")
    done = await runner.resume(ops, waiting.run_id)
    # the pending call is denied; the model gets no further turn: the run stops there
    assert (done.status, done.reason_code) == (RunStatus.ESCALATED, "agent.disabled")
    assert done.denials == ("agent.disabled",)


def test_each_change_is_a_recorded_audited_version(sqlite_db: Database) -> None:
    published: list[Any] = []
    set_agent_state(sqlite_db, "ops", by="alice", enabled=False, on_commit=published.extend)
    state = set_agent_state(sqlite_db, "ops", by="bob", mode=Autonomy.ADVISORY, comment="new team")
    assert (state.enabled, state.mode, state.version) == (False, Autonomy.ADVISORY, 2)
    assert agent_state(sqlite_db, "ops") == state
    assert agent_state(sqlite_db, "unknown") == AgentState()
    [row] = list_agents(sqlite_db)
    assert (row.updated_by, row.comment) == ("bob", "new team")
    assert isinstance(published[0].event, AgentStateChanged) and published[0].event.by == "alice"
    with sqlite_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok and report.checked == 2


def test_the_cli_flips_the_switch_and_the_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    monkeypatch.setenv("STEWARD_DEMO_SYSTEMS", str(tmp_path / "systems.db"))
    cli = CliRunner()
    spec = str(Path(__file__).parents[2] / "src/steward/demo/support_agent.yaml")
    assert cli.invoke(app, ["db", "init"]).exit_code == 0
    issued = cli.invoke(app, ["keys", "create", "--name", "alice", "--role", "admin"])
    token = issued.output.strip().splitlines()[-1]
    nobody = cli.invoke(app, ["agents", "disable", "support-desk"])
    assert nobody.exit_code == 4 and "pass --key stw_... or set STEWARD_API_KEY" in nobody.output
    result = cli.invoke(
        app, ["agents", "disable", "support-desk", "--key", token, "--comment", "incident"]
    )
    assert (
        result.exit_code == 0 and "disabled" in result.output and "by admin:alice" in result.output
    )
    refused = cli.invoke(app, ["run", spec, "-i", "Where is order #10005?"])
    assert refused.exit_code == 4 and "agent support-desk is disabled" in refused.output  # denied
    monkeypatch.setenv("STEWARD_API_KEY", token)
    assert cli.invoke(app, ["agents", "enable", "support-desk"]).exit_code == 0
    assert cli.invoke(app, ["run", spec, "-i", "Where is order #10005?"]).exit_code == 0
    assert cli.invoke(app, ["agents", "mode", "support-desk", "lazy"]).exit_code == 2
    listed = cli.invoke(app, ["agents", "list"])
    assert "support-desk" in listed.output and "enabled" in listed.output
