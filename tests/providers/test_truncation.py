"""Cut-off answers on the real wire protocols: `finish_reason: length` (OpenAI) and
`stop_reason: max_tokens` (Anthropic) are never a final answer, and the tool calls of such
a response never reach the gate. limits.on_truncation decides: escalate (default) or ask
the model to go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from steward.core.events import ModelResponded, RunStatus, ToolCallProposed
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.runtime.runner import RunResult
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import read_journal
from steward.tools import tool

from .anthropic_server import AnthropicServer
from .openai_server import OpenAIServer

SPEC = """
name: desk
model:
  name: {model}
  base_url: {url}
  api_key_env: STEWARD_TEST_KEY
  retries: {{attempts: 1}}
tools: [refund]
decision_authority: {{autonomous: [refund]}}
limits: {{max_run_seconds: 20, max_steps: 4{extra}}}
"""

refunds: list[str] = []


@tool(effect="write", keyed=True)
async def refund(order_id: str) -> str:
    refunds.append(order_id)
    return "refunded"


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OpenAIServer, AnthropicServer]]:
    monkeypatch.setenv("STEWARD_TEST_KEY", "sk-test")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    refunds.clear()
    with OpenAIServer() as o, AnthropicServer() as a:
        yield o, a


def cut(server: OpenAIServer | AnthropicServer, text: str, **kw: Any) -> None:
    """An answer stopped by the output token limit."""
    if isinstance(server, OpenAIServer):
        server.reply(text, finish_reason="length", **kw)
    else:
        server.reply(text, stop_reason="max_tokens", **kw)


async def run(
    db: Database, server: OpenAIServer | AnthropicServer, streamed: bool, extra: str = ""
) -> RunResult:
    if isinstance(server, OpenAIServer):
        text = SPEC.format(model="openai:gpt-4o-mini", url=server.base_url, extra=extra)
    else:
        text = SPEC.format(model="anthropic:claude-haiku-4-5", url=server.url, extra=extra)
    agent = build_agent(load_spec_text(text, "desk.yaml"), [refund])
    journal = Journal(db)
    shown: list[str] = []
    try:
        return await Runner(EmbeddedEngine(db, journal)).run(
            agent, "refund order 7", on_text=shown.append if streamed else None
        )
    finally:
        journal.close()


CASES = pytest.mark.parametrize(
    ("protocol", "streamed"),
    [("openai", False), ("openai", True), ("anthropic", False), ("anthropic", True)],
)


def pick(
    servers: tuple[OpenAIServer, AnthropicServer], protocol: str
) -> OpenAIServer | AnthropicServer:
    return servers[0] if protocol == "openai" else servers[1]


@CASES
async def test_a_cut_off_answer_escalates(
    servers: tuple[OpenAIServer, AnthropicServer],
    sqlite_db: Database,
    protocol: str,
    streamed: bool,
) -> None:
    server = pick(servers, protocol)
    cut(server, "The answer is")
    result = await run(sqlite_db, server, streamed)
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.truncated")
    assert result.output == "The answer is", (
        "the partial text is kept for the person who takes over"
    )


@CASES
async def test_tool_calls_of_a_cut_off_response_never_reach_the_gate(
    servers: tuple[OpenAIServer, AnthropicServer],
    sqlite_db: Database,
    protocol: str,
    streamed: bool,
) -> None:
    server = pick(servers, protocol)
    cut(server, "Refunding.", tool_calls=[("refund", {"order_id": "7"})])
    result = await run(sqlite_db, server, streamed)
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.truncated")
    assert refunds == []
    events = [e.event for e in read_journal(sqlite_db, result.run_id)]
    assert not any(isinstance(e, ToolCallProposed) for e in events)


@CASES
async def test_on_truncation_continue_asks_the_model_to_go_on(
    servers: tuple[OpenAIServer, AnthropicServer],
    sqlite_db: Database,
    protocol: str,
    streamed: bool,
) -> None:
    server = pick(servers, protocol)
    cut(server, "The answer is")
    server.reply(" 42.")
    result = await run(sqlite_db, server, streamed, extra=", on_truncation: continue")
    assert (result.status, result.output) == (RunStatus.SUCCEEDED, "The answer is 42.")
    second = server.requests[1].body["messages"]
    said = json_text(second[-1])
    assert "cut off" in said and json_text(second[-2]) == "The answer is"
    responded = [
        e.event
        for e in read_journal(sqlite_db, result.run_id)
        if isinstance(e.event, ModelResponded)
    ]
    assert [r.response.finish_reason for r in responded] == ["length", "stop"]


async def test_continuing_is_bounded_by_max_steps(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database
) -> None:
    server = servers[0]
    for i in range(4):
        cut(server, f"part {i} ")
    result = await run(sqlite_db, server, False, extra=", on_truncation: continue")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "limits.max_steps")


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_content_filter_stop_escalates(
    servers: tuple[OpenAIServer, AnthropicServer], sqlite_db: Database, streamed: bool
) -> None:
    servers[0].reply("I can", finish_reason="content_filter")
    result = await run(sqlite_db, servers[0], streamed, extra=", on_truncation: continue")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.content_filtered")
    servers[1].reply("I can", stop_reason="refusal")
    result = await run(sqlite_db, servers[1], streamed)
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "model.content_filtered")


def json_text(message: dict[str, Any]) -> str:
    """A message's text in either protocol's shape."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)
