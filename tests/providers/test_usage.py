"""Usage is never silently zero: a provider that reports none is counted locally, priced,
marked `estimated` in the event, the ledger and `steward costs`, and charged to budgets;
a stream cut before its end marker is no response at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from steward.cli.main import app
from steward.core.events import ModelResponded, RunStatus
from steward.engines.embedded import EmbeddedEngine
from steward.gate.budget import run_account
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.costs import cost_report
from steward.store.limits import limit_store
from steward.store.runs import read_journal

from .openai_server import OpenAIServer, Stream

SPEC = """
name: desk
model:
  name: openai:gpt-4o-mini
  base_url: {url}
  api_key_env: STEWARD_TEST_KEY
  retries: {{attempts: 1}}
cost_controls: {{max_cost_per_run_usd: 1.0}}
limits: {{max_run_seconds: 20}}
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("STEWARD_TEST_KEY", "sk-test")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with OpenAIServer() as s:
        yield s


async def charged(db: Database, run_id: str) -> float:
    """What the run's budget account holds in the shared limit store."""
    return await limit_store(db).total(run_account(run_id))


async def run(db: Database, server: OpenAIServer, streamed: bool) -> tuple[RunStatus, str, str]:
    agent = build_agent(load_spec_text(SPEC.format(url=server.base_url), "desk.yaml"), [])
    journal = Journal(db)
    try:
        result = await Runner(EmbeddedEngine(db, journal)).run(
            agent, "where is my order?", on_text=(lambda _t: None) if streamed else None
        )
    finally:
        journal.close()
    return result.status, result.reason_code, result.run_id


@pytest.mark.parametrize("streamed", [False, True], ids=["respond", "stream"])
async def test_missing_usage_is_estimated_priced_and_charged(
    server: OpenAIServer, sqlite_db: Database, streamed: bool
) -> None:
    server.reply("Your order shipped yesterday.", usage=None)
    status, _, run_id = await run(sqlite_db, server, streamed)
    assert status is RunStatus.SUCCEEDED
    [responded] = [
        e.event for e in read_journal(sqlite_db, run_id) if isinstance(e.event, ModelResponded)
    ]
    usage = responded.response.usage
    assert usage.estimated and usage.input_tokens > 0 and usage.output_tokens > 0
    expected = (usage.input_tokens * 0.15 + usage.output_tokens * 0.60) / 1e6
    assert usage.cost_usd == pytest.approx(expected)
    assert await charged(sqlite_db, run_id) == pytest.approx(expected), "the budget was charged"
    [row] = cost_report(sqlite_db).rows
    assert (row.estimated, row.calls) == (1, 1)


async def test_a_stream_without_its_end_marker_escalates_truncated(
    server: OpenAIServer, sqlite_db: Database
) -> None:
    server.enqueue(Stream(["Your order shipped."], usage=None, done=False))
    status, code, run_id = await run(sqlite_db, server, True)
    assert (status, code) == (RunStatus.ESCALATED, "model.truncated")
    assert await charged(sqlite_db, run_id) == 0


def test_steward_costs_shows_estimated_calls(server: OpenAIServer, sqlite_db: Database) -> None:
    import asyncio

    server.reply("ok", usage=None)
    asyncio.run(run(sqlite_db, server, False))
    out = CliRunner().invoke(app, ["costs", "--db", sqlite_db.url])
    assert out.exit_code == 0, out.output
    assert "estimated" in out.output and "1 call(s) got no usage" in out.output
