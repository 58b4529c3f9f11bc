"""Cost: the price table, cost per call from reported usage, attribution, budgets that
never overshoot under concurrency, and threshold alerts to a webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from steward.core.errors import StewardError
from steward.core.events import BudgetThresholdCrossed, ModelResponded, RunStatus
from steward.core.messages import Usage
from steward.engines.embedded import EmbeddedEngine
from steward.gate.budget import day_account, tag_account, today
from steward.models.pricing import PRICES_ENV, load_prices
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.costs import cost_report
from steward.store.runs import read_journal
from steward.store.schema import cost_ledger
from steward.telemetry.alerts import WebhookAlerts
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: buyer
model: scripted
tools: [quote, paid_lookup]
decision_authority: {autonomous: [quote, paid_lookup]}
cost_controls: {%s}
limits: {max_output_tokens: 100, max_steps: 10}
"""
USAGE = Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=200)


@tool(effect="read")
async def quote(item: str) -> dict[str, str]:
    return {"item": item, "price": "12"}


@tool(effect="read", cost_usd=0.01)
async def paid_lookup(item: str) -> str:
    return item


def agent(
    costs: str, responses: list[Any], *, model_name: str = "openai:gpt-4o", delay: float = 0.0
) -> Any:
    loaded = load_spec_text(SPEC % costs, "buyer.yaml")
    model = ScriptedModel(responses, delay=delay, name=model_name)
    return build_agent(loaded, [quote, paid_lookup], model=model)


@pytest.fixture
async def runner(any_db: Database) -> AsyncIterator[Runner]:
    journal = Journal(any_db)
    yield Runner(EmbeddedEngine(any_db, journal))
    journal.close()


def test_price_table_prices_reported_usage() -> None:
    prices = load_prices()
    assert prices.version and "2025" in prices.source
    # gpt-4o: $2.50 in, $1.25 cached in, $10 out per million tokens
    assert prices.cost("openai:gpt-4o", USAGE) == pytest.approx(
        (800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6
    )
    assert prices.cost("gpt-4o-2024-08-06", USAGE) == prices.cost("gpt-4o", USAGE)
    assert prices.cost("anthropic:claude-sonnet-4-5", Usage(1_000_000, 0)) == pytest.approx(3.0)
    assert prices.cost("nobody:unknown-model", USAGE) is None


def test_users_override_the_price_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "prices.yaml"
    override.write_text(
        "version: ours-1\nmodels:\n  gpt-4o: {input: 1, output: 2, cached_input: 0.5}\n"
    )
    monkeypatch.setenv(PRICES_ENV, str(override))
    prices = load_prices()
    assert prices.cost("gpt-4o", Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert prices.cost("gpt-4o-mini", Usage(1_000_000)) == pytest.approx(0.15)
    override.write_text("models:\n  gpt-4o: {input: -1, output: 2, cached_input: 0}\n")
    with pytest.raises(StewardError, match="finite"):
        load_prices()


async def test_cost_is_computed_recorded_and_attributed(runner: Runner, any_db: Database) -> None:
    script = [calls(("quote", {"item": "a"}), usage=USAGE), final("ok", usage=USAGE)]
    result = await runner.run(agent("", script), "buy", tags={"tenant": "acme"})
    responded = [
        e.event for e in read_journal(any_db, result.run_id) if isinstance(e.event, ModelResponded)
    ]
    expected = load_prices().cost("gpt-4o", USAGE)
    assert [r.response.usage.cost_usd for r in responded] == [pytest.approx(expected)] * 2
    report = cost_report(any_db)
    [row] = report.rows
    assert (row.agent, row.model, row.tenant, row.calls) == ("buyer", "openai:gpt-4o", "acme", 2)
    assert row.cost_usd == pytest.approx(2 * expected)
    assert report.per_transaction("buyer") == pytest.approx(2 * expected)


async def test_a_costed_tool_is_in_the_ledger(runner: Runner, any_db: Database) -> None:
    await runner.run(agent("", [calls(("paid_lookup", {"item": "x"})), final("ok")]), "look")
    with any_db.reader.connect() as connection:
        rows = connection.execute(select(cost_ledger.c.model, cost_ledger.c.cost_usd)).all()
    assert ("tool:paid_lookup", pytest.approx(0.01)) in [(m, pytest.approx(c)) for m, c in rows]


async def test_the_per_run_budget_stops_a_run_that_would_exceed_it(runner: Runner) -> None:
    script = [calls(("quote", {"item": str(i)}), usage=USAGE) for i in range(8)] + [final("done")]
    result = await runner.run(agent("max_cost_per_run_usd: 0.01", script), "keep buying")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "budget.run_exhausted")
    assert 1 < result.steps < 8


async def test_an_unpriced_model_under_a_budget_fails_closed(runner: Runner) -> None:
    helper = agent("max_daily_spend_usd: 5", [final("ok")], model_name="mystery:model-x")
    result = await runner.run(helper, "hi")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "budget.unpriced")


async def test_100_concurrent_runs_never_overshoot_the_daily_budget(
    runner: Runner, any_db: Database
) -> None:
    limit = 0.05
    # Usage a real provider could report for this request: its input tokens are fewer
    # than the request's bytes, its output within max_output_tokens.
    honest = Usage(input_tokens=20, output_tokens=100)
    helper = agent(f"max_daily_spend_usd: {limit}", [final("ok", usage=honest)], delay=0.01)
    results = await asyncio.gather(*(runner.run(helper, f"request {i}") for i in range(100)))
    statuses = [r.reason_code or r.status.value for r in results]
    assert statuses.count("succeeded") >= 1
    assert statuses.count("budget.daily_exhausted") >= 1
    assert set(statuses) <= {"succeeded", "budget.daily_exhausted"}
    engine = runner.engine
    assert isinstance(engine, EmbeddedEngine)
    await engine.journal.flush()
    with any_db.reader.connect() as connection:
        spent = connection.execute(select(func.sum(cost_ledger.c.cost_usd))).scalar_one()
    assert spent <= limit
    assert await runner.gates.limits.total(day_account("buyer", today())) <= limit


async def test_a_tenant_budget_is_shared_by_that_tenant_s_runs_only(runner: Runner) -> None:
    """`max_daily_spend_per_tag_usd: {tenant: X}` caps each tenant's day, across its runs
    (and processes: the account is in the limit store), and leaves other tenants alone;
    model calls and costed tools both count."""
    costs = "max_daily_spend_per_tag_usd: {tenant: 0.025}"
    script = [calls(("paid_lookup", {"item": "x"})), final("ok")]
    acme = [
        await runner.run(agent(costs, script), "look", tags={"tenant": "acme"}) for _ in range(3)
    ]
    other = await runner.run(agent(costs, script), "look", tags={"tenant": "globex"})
    assert [r.denials for r in acme] == [(), (), ("budget.tag_exhausted",)]
    assert other.status == RunStatus.SUCCEEDED and not other.denials
    assert await runner.gates.limits.total(tag_account("tenant", "acme", today())) <= 0.025


async def test_a_run_without_the_budgeted_tag_spends_nothing(runner: Runner) -> None:
    """A spend that cannot be attributed to a tenant cannot be bounded by its budget: the
    first model call is not made."""
    costs = "max_daily_spend_per_tag_usd: {tenant: 5}"
    script = [calls(("paid_lookup", {"item": "x"})), final("ok")]
    result = await runner.run(agent(costs, script), "look")
    assert (result.status, result.reason_code) == (RunStatus.ESCALATED, "budget.untagged")


def test_tag_budgets_are_checked_when_the_spec_loads() -> None:
    with pytest.raises(StewardError, match="max_daily_spend_per_tag_usd"):
        load_spec_text(SPEC % "max_daily_spend_per_tag_usd: {tenant: -1}", "buyer.yaml")


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Receiver.received
    server.shutdown()
    thread.join(5)


async def test_crossing_the_alert_threshold_emits_an_event_and_calls_the_webhook(
    any_db: Database, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    journal = Journal(any_db)
    alerts = WebhookAlerts(timeout=5)
    journal.subscribe(alerts)
    runner = Runner(EmbeddedEngine(any_db, journal))
    costs = f"max_daily_spend_usd: 0.02, alert_on_threshold: 0.5, alert_webhook: '{url}'"
    helper = agent(
        costs, [calls(("quote", {"item": "a"}), usage=USAGE)] * 5 + [final("ok", usage=USAGE)]
    )
    result = await runner.run(helper, "buy")
    journal.close()
    alerts.wait()
    crossed = [
        e.event
        for e in read_journal(any_db, result.run_id)
        if isinstance(e.event, BudgetThresholdCrossed)
    ]
    assert len(crossed) == 1, "one alert per agent and day"
    assert crossed[0].spent_usd >= 0.01
    assert (
        len(received) == 1 and received[0]["agent"] == "buyer" and received[0]["limit_usd"] == 0.02
    )
    assert alerts.sent == 1
