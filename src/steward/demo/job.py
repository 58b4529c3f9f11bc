"""The demo job: govern the support-desk agent over the bundled tickets."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from steward.core.events import RunStatus
from steward.demo.tickets import Ticket, load_tickets
from steward.demo.tools import reset_systems, support_tools
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, RunResult, build_agent
from steward.spec import LoadedSpec, load_spec_text
from steward.store.chain import VerifyReport, verify_chain
from steward.store.database import Database
from steward.store.journal import Journal

# How the demo starts a run and waits until it finishes or waits for a person: the
# embedded runner's `run`, or TemporalRuns.run (steward/engines/temporal/client.py).
Drive = Callable[[AgentRuntime, str, dict[str, str]], Awaitable[RunResult]]


def demo_spec() -> LoadedSpec:
    text = (
        resources.files("steward.demo").joinpath("support_agent.yaml").read_text(encoding="utf-8")
    )
    return load_spec_text(text, "steward/demo/support_agent.yaml")


@dataclass(slots=True)
class DemoReport:
    results: list[tuple[Ticket, RunResult]] = field(default_factory=list)
    audit: VerifyReport | None = None
    wall_seconds: float = 0.0

    def bucket(self, result: RunResult) -> str:
        if result.status is RunStatus.WAITING:
            return "waiting for approval"
        if result.status is RunStatus.ESCALATED:
            return "escalated"
        if result.status is not RunStatus.SUCCEEDED:
            return result.status.value
        return "denied, answered" if result.denials else "resolved autonomously"

    def buckets(self) -> Counter[str]:
        return Counter(self.bucket(r) for _, r in self.results)

    def denials(self) -> Counter[str]:
        return Counter(code for _, r in self.results for code in dict.fromkeys(r.denials))

    def escalations(self) -> Counter[str]:
        return Counter(r.reason_code for _, r in self.results if r.status is RunStatus.ESCALATED)

    def latency_ms(self, quantile: float) -> float:
        values = sorted(r.seconds * 1000 for _, r in self.results)
        if not values:
            return 0.0
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(quantile * 100) - 1]


async def run_demo(
    db: Database,
    *,
    systems: Path,
    limit: int | None = None,
    concurrency: int = 16,
    on_done: Callable[[Ticket, RunResult], None] | None = None,
    journal: Journal | None = None,
    drive: Drive | None = None,
) -> DemoReport:
    """Every ticket through the agent; `drive` runs each (default: this process's
    embedded runner)."""
    reset_systems(systems)
    agent = build_agent(demo_spec(), support_tools(systems))
    tickets = load_tickets()[:limit] if limit else load_tickets()
    report = DemoReport()
    own_journal = journal is None
    journal = journal or Journal(db)
    if drive is None:
        runner = Runner(EmbeddedEngine(db, journal))

        async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
            return await runner.run(agent, text, tags=tags)

    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def one(ticket: Ticket) -> None:
        async with gate:
            tags = {"ticket": ticket.id, "category": ticket.category}
            result = await drive(agent, ticket.text, tags)
        report.results.append((ticket, result))
        if on_done is not None:
            on_done(ticket, result)

    try:
        await asyncio.gather(*(one(t) for t in tickets))
    finally:
        if own_journal:
            journal.close()
        else:
            await journal.flush()
    report.wall_seconds = loop.time() - began
    with db.reader.connect() as connection:
        report.audit = verify_chain(connection)
    return report
