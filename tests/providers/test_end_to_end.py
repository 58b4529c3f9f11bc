"""Agents on real provider protocols: a spec naming `openai:` / `anthropic:` models runs
against loopback servers, falls back across providers, and refuses to start without keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steward.core.errors import SpecError
from steward.core.events import ModelFailed, ModelResponded, RunStatus
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import read_journal
from steward.tools import tool

from .anthropic_server import AnthropicServer
from .openai_server import OpenAIServer, Stream, usage

SPEC = """
name: desk
model:
  name: openai:gpt-4o-mini
  base_url: {openai}
  api_key_env: STEWARD_TEST_OPENAI_KEY
  timeout_seconds: 5
  fallbacks:
    - name: anthropic:claude-haiku-4-5
      base_url: {anthropic}
      api_key_env: STEWARD_TEST_ANTHROPIC_KEY
tools: [lookup]
decision_authority: {{autonomous: [lookup]}}
limits: {{max_run_seconds: 20}}
"""


@tool(effect="read")
async def lookup(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "shipped"}


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OpenAIServer, AnthropicServer]]:
    monkeypatch.setenv("STEWARD_TEST_OPENAI_KEY", "sk-test")
    monkeypatch.setenv("STEWARD_TEST_ANTHROPIC_KEY", "sk-ant-test")
    with OpenAIServer() as openai_server, AnthropicServer() as anthropic_server:
        yield openai_server, anthropic_server


def _agent(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> object:
    text = SPEC.format(openai=openai_server.base_url, anthropic=anthropic_server.url)
    return build_agent(load_spec_text(text, "desk.yaml"), [lookup])


async def test_an_agent_runs_on_the_openai_protocol(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database
) -> None:
    openai_server, anthropic_server = servers
    openai_server.reply(tool_calls=[("lookup", {"order_id": "10005"})], usage=usage(200, 20))
    openai_server.reply("Order 10005 has shipped.", usage=usage(260, 12))
    journal = Journal(sqlite_db)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(
        _agent(openai_server, anthropic_server), "where is 10005?"
    )  # type: ignore[arg-type]
    journal.close()
    assert (result.status, result.output) == (RunStatus.SUCCEEDED, "Order 10005 has shipped.")
    second = openai_server.requests[1].body
    assert second["model"] == "gpt-4o-mini"
    assert (
        second["messages"][-1]["role"] == "tool" and "shipped" in second["messages"][-1]["content"]
    )
    costs = [e.event.response.usage.cost_usd for e in read_journal(sqlite_db, result.run_id)
             if isinstance(e.event, ModelResponded)]  # fmt: skip
    assert costs == [
        pytest.approx((200 * 0.15 + 20 * 0.6) / 1e6),
        pytest.approx((260 * 0.15 + 12 * 0.6) / 1e6),
    ]


async def test_a_failing_provider_falls_back_to_the_next(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database
) -> None:
    openai_server, anthropic_server = servers
    openai_server.status(503)
    anthropic_server.reply("Served by the fallback.")
    journal = Journal(sqlite_db)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(
        _agent(openai_server, anthropic_server), "hello"
    )  # type: ignore[arg-type]
    journal.close()
    assert (result.status, result.output) == (RunStatus.SUCCEEDED, "Served by the fallback.")
    [served] = [
        e.event
        for e in read_journal(sqlite_db, result.run_id)
        if isinstance(e.event, ModelResponded)
    ]
    assert served.response.model == "anthropic:claude-haiku-4-5"


async def test_every_provider_down_escalates_with_the_reasons(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database
) -> None:
    openai_server, anthropic_server = servers
    openai_server.status(500)
    anthropic_server.status(529)
    journal = Journal(sqlite_db)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(
        _agent(openai_server, anthropic_server), "hello"
    )  # type: ignore[arg-type]
    journal.close()
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.unavailable")
    assert "openai:gpt-4o-mini" in result.reason and "anthropic:claude-haiku-4-5" in result.reason


def test_a_missing_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_TEST_OPENAI_KEY", raising=False)
    text = SPEC.format(openai="http://127.0.0.1:9/v1", anthropic="http://127.0.0.1:9")
    with pytest.raises(SpecError) as caught:
        build_agent(load_spec_text(text, "desk.yaml"), [lookup])
    [problem] = caught.value.problems
    assert (
        problem.field == "model"
        and "STEWARD_TEST_OPENAI_KEY" in problem.message
        and problem.line == 4
    )


def _quick_retries(openai_server: OpenAIServer, anthropic_server: AnthropicServer,
                   attempts: int, fallback: bool = True) -> object:  # fmt: skip
    text = SPEC.format(openai=openai_server.base_url, anthropic=anthropic_server.url)
    retries = f"  retries: {{attempts: {attempts}, backoff_seconds: 0.01}}\n"
    text = text.replace("  timeout_seconds: 5\n", "  timeout_seconds: 5\n" + retries)
    if not fallback:
        text = text.split("  fallbacks:")[0] + "tools: [lookup]" + text.split("tools: [lookup]")[1]
    return build_agent(load_spec_text(text, "desk.yaml"), [lookup])


async def test_every_failed_attempt_is_on_the_record(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database
) -> None:
    openai_server, anthropic_server = servers
    openai_server.status(503)
    openai_server.status(500)
    anthropic_server.status(529)
    anthropic_server.status(529)
    journal = Journal(sqlite_db)
    agent = _quick_retries(openai_server, anthropic_server, attempts=2)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(agent, "hello")  # type: ignore[arg-type]
    journal.close()
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.unavailable")
    failed = [
        e.event for e in read_journal(sqlite_db, result.run_id) if isinstance(e.event, ModelFailed)
    ]
    assert [(f.model, f.attempt, f.step) for f in failed] == [
        ("openai:gpt-4o-mini", 1, 0),
        ("openai:gpt-4o-mini", 2, 0),
        ("anthropic:claude-haiku-4-5", 1, 0),
        ("anthropic:claude-haiku-4-5", 2, 0),
    ]
    assert failed[0].endpoint.startswith("openai:gpt-4o-mini@http://127.0.0.1:")
    assert all(f.code == "model.unavailable" and f.elapsed_ms > 0 for f in failed)


@pytest.mark.parametrize("cut_after", [1, 2], ids=["before-text", "after-text"])
async def test_the_reason_code_is_the_same_wherever_the_stream_broke(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database, cut_after: int
) -> None:
    openai_server, anthropic_server = servers
    openai_server.enqueue(Stream(["Order 10005 "], truncate_after=cut_after))
    journal = Journal(sqlite_db)
    agent = _quick_retries(openai_server, anthropic_server, attempts=1, fallback=False)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(
        agent, "hello", on_text=lambda _t: None
    )  # type: ignore[arg-type]
    journal.close()
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.truncated")
