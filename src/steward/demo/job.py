"""The demo job: govern the support-desk agent over the bundled tickets; or, in the
multi-agent mode, the same tickets through `triage`, which hands each to a specialist
(orders, refunds, account) or to the escalation desk, every hop a governed tool call."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from steward.core.decision import Verdict
from steward.core.events import GateDecided, RunStatus
from steward.demo import MULTI_AGENT, TRIAGE
from steward.demo.tickets import Ticket, load_tickets
from steward.demo.tools import reset_systems, support_tools
from steward.engines.embedded import EmbeddedEngine
from steward.orchestration import Delegator
from steward.runtime import AgentRuntime, Runner, RunResult, build_agent
from steward.runtime.runner import new_run_id
from steward.spec import LoadedSpec, load_spec_text
from steward.store.chain import VerifyReport, verify_chain
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.leases import RunLeases
from steward.store.runs import read_journal, run_tree

# How the demo starts a run and waits until it finishes or waits for a person: the
# embedded runner's `run`, or TemporalRuns.run (steward/engines/temporal/client.py).
Drive = Callable[[AgentRuntime, str, dict[str, str]], Awaitable[RunResult]]


def _spec(file: str) -> LoadedSpec:
    text = resources.files("steward.demo").joinpath(file).read_text(encoding="utf-8")
    return load_spec_text(text, f"steward/demo/{file}")


def demo_spec() -> LoadedSpec:
    return _spec("support_agent.yaml")


def multi_agent_specs() -> list[LoadedSpec]:
    """triage, then the agents it may hand tickets to."""
    return [_spec(f"{name}_agent.yaml") for name in MULTI_AGENT]


def bucket(status: RunStatus, denials: tuple[str, ...]) -> str:
    """A run's row of the outcome table."""
    if status is RunStatus.WAITING:
        return "waiting for approval"
    if status is RunStatus.ESCALATED:
        return "escalated"
    if status is not RunStatus.SUCCEEDED:
        return status.value
    return "denied, answered" if denials else "resolved autonomously"


@dataclass(slots=True)
class AgentTally:
    """One agent's row of the multi-agent demo: its runs, their outcomes, its denials."""

    runs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class DemoReport:
    results: list[tuple[Ticket, RunResult]] = field(default_factory=list)
    audit: VerifyReport | None = None
    wall_seconds: float = 0.0

    # the multi-agent mode: per agent, its runs' outcomes and denied calls; per ticket,
    # the agents below triage that handled it (hop 1 of its run tree)
    agents: dict[str, AgentTally] = field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def bucket(self, result: RunResult) -> str:
        return bucket(result.status, result.denials)

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
    multi_agent: bool = False,
) -> DemoReport:
    """Every ticket through the agent; `drive` runs each (default: this process's
    embedded runner). `multi_agent`: through triage and its specialists instead, with
    each ticket's outcome read from its whole run tree (with `drive`, a remote engine's
    workers run the specialists at the versions put on record here)."""
    reset_systems(systems)
    tools = support_tools(systems)
    delegation = None
    specialists: list[AgentRuntime] = []
    if multi_agent:
        agents = {s.spec.name: build_agent(s, tools) for s in multi_agent_specs()}
        agent = agents[TRIAGE]
        delegation = Delegator(agents, db)
        specialists = [a for name, a in agents.items() if name != TRIAGE]
    else:
        agent = build_agent(demo_spec(), tools)
    tickets = load_tickets()[:limit] if limit else load_tickets()
    report = DemoReport()
    own_journal = journal is None
    journal = journal or Journal(db)
    if drive is not None and specialists:  # on record, where a worker's delegations find them
        recorder = Runner(EmbeddedEngine(db, journal))
        for specialist in specialists:
            recorder.remember_version(specialist)
    leases: RunLeases | None = None
    if drive is None:
        runner = Runner(EmbeddedEngine(db, journal), delegation=delegation)
        held = leases = RunLeases(db)  # each run's, while this process drives it

        async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
            run_id = new_run_id()
            async with held.driving(run_id):  # a new id: free
                return await runner.run(agent, text, run_id=run_id, tags=tags)

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
        if leases is not None:
            leases.close()
    report.wall_seconds = loop.time() - began
    if multi_agent:  # each ticket's outcome from its whole run tree, now on record
        report.results = await asyncio.to_thread(
            lambda: [(t, _read_tree(db, t, r, report)) for t, r in report.results]
        )
    with db.reader.connect() as connection:
        report.audit = verify_chain(connection)
    return report


def _read_tree(db: Database, ticket: Ticket, root: RunResult, report: DemoReport) -> RunResult:
    """The ticket's run tree on record: each run's outcome and denied calls counted under
    its agent, the specialists that handled the ticket noted; returns the root's result
    with the denials of the whole tree (a call a specialist was denied is the ticket's)."""
    tree = run_tree(db, root.run_id)
    denied_in_tree: list[str] = []
    for row in tree:
        denied = tuple(
            e.event.decision.primary_code
            for e in read_journal(db, row.id)
            if isinstance(e.event, GateDecided) and e.event.decision.verdict is Verdict.DENY
        )
        tally = report.agents.setdefault(row.agent, AgentTally())
        tally.runs += 1
        tally.outcomes[bucket(RunStatus(row.status), denied)] += 1
        tally.denials.update(list(dict.fromkeys(denied)))  # a run counts a code once
        denied_in_tree.extend(denied)
    report.routes[ticket.id] = tuple(r.agent for r in tree if r.hop == 1)
    return replace(root, denials=tuple(denied_in_tree))
