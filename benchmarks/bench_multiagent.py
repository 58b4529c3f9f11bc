"""Many agents, one gate: what delegation costs, in the same run as its baselines.

(a) A2A round trip: the demo agent served over A2A (the a2a-sdk's client, blocking
    `SendMessage` until completed) against the HTTP floor (`GET /livez`) of the same
    server; bench_a2a.py's server and probes, reused.
(b) Governed delegation per hop: a root agent that asks a specialist through
    `delegate.billing` (a tool call through the gate that starts a governed child run,
    which itself calls a read tool) against the same root calling the specialist's work
    as a direct in-process tool (the same read, no child run); and one more hop in
    between (root -> orders -> billing) against the one-hop tree.
(c) A 3-level tree end to end (root -> specialist -> sub-specialist, the sub-specialist
    calling a read tool): 100 trees one after another (p50/p95/p99, trees/s) and 100 with
    16 in flight (trees/s), against a single agent doing the same read in one run.

Every agent reasons with the embedded `rules` model (deterministic, no network); runs are
journaled to a temporary SQLite file (WAL).
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Measurement, Report, main, sample_async, scaled
from bench_a2a import PROBES, served_a2a
from steward.core.events import RunStatus
from steward.engines.embedded import EmbeddedEngine
from steward.orchestration import Delegator
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import run_tree
from steward.tools import Tool, tool

QUESTION = "Where is my order #10114? It has not arrived."


async def lookup(order: str) -> dict[str, Any]:
    """The sub-specialist's read (in memory: the figures are steward's, not a database's)."""
    return {"order": order, "status": "shipped"}


async def ask_billing(message: str) -> dict[str, Any]:
    """The baseline: the specialist's work as a direct in-process call, no child run."""
    found = await lookup("10114")
    return {"answer": f"Order {found['order']} is {found['status']}.", "asked": len(message)}


TOOLS: list[Tool] = [
    tool(effect="read")(lookup),
    # the same shape as a delegation tool: a keyed write (write-ahead, at most once)
    tool(effect="write", keyed=True)(ask_billing),
]


def _spec(name: str, tool_name: str, args: str, *, agents: str = "") -> str:
    orchestration = f"orchestration:\n  agents: [{agents}]\n  max_agent_hops: 3\n" if agents else ""
    return f"""
name: {name}
model: rules
tools: [{tool_name}]
{orchestration}decision_authority:
  autonomous: [{tool_name}]
limits:
  max_steps: 4
  max_run_seconds: 60
  max_concurrent_runs: 64
rules:
  intents:
    - name: any
      match: ['(?s)\\S']
      extract: {{ticket: '(?s)^(.{{1,2000}})'}}
      plan: [[{{tool: {tool_name}, args: {args}}}]]
      answer: {name} answered.
      confidence: 0.9
"""


DELEGATE = "{message: '{ticket}'}"
SPECS = {
    # the sub-specialist, and the single agent of (c)'s baseline: one read, then answer
    "billing": _spec("billing", "lookup", "{order: '10114'}"),
    "solo": _spec("solo", "lookup", "{order: '10114'}"),
    # (b)'s baseline: the root calling billing's work in process
    "direct": _spec("direct", "ask_billing", DELEGATE),
    # one hop: root -> billing
    "root1": _spec("root1", "delegate.billing", DELEGATE, agents="billing"),
    # (c), and (b)'s second hop: root -> orders -> billing
    "orders": _spec("orders", "delegate.billing", DELEGATE, agents="billing"),
    "triage": _spec("triage", "delegate.orders", DELEGATE, agents="orders"),
}


def deployment() -> dict[str, AgentRuntime]:
    return {
        name: build_agent(load_spec_text(text, f"{name}.yaml"), TOOLS)
        for name, text in SPECS.items()
    }


async def concurrently(fn: Any, n: int, in_flight: int) -> tuple[list[int], int]:
    """`n` calls of `fn`, `in_flight` at a time (after one untimed wave): each call's
    time, and the wall time of all of them."""
    gate = asyncio.Semaphore(in_flight)
    samples: list[int] = []

    async def timed(i: int) -> None:
        async with gate:
            t0 = time.perf_counter_ns()
            await fn(i)
            samples.append(time.perf_counter_ns() - t0)

    await asyncio.gather(*(timed(i) for i in range(in_flight)))
    samples.clear()
    gc.collect()
    t0 = time.perf_counter_ns()
    await asyncio.gather(*(timed(i) for i in range(n)))
    return samples, time.perf_counter_ns() - t0


async def _a2a(report: Report, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        async with served_a2a(tmp) as probes:
            for key, label, unit in PROBES:
                if key in ("http_floor", "a2a_run"):
                    samples = await sample_async(probes[key], n, 3)
                    report.add(Measurement(f"a2a.{key}", label, samples, unit=unit))


async def _trees(report: Report, n_hop: int, n_tree: int, in_flight: int) -> None:
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'b.db'}")
        journal = Journal(db)
        agents = deployment()
        runner = Runner(EmbeddedEngine(db, journal), delegation=Delegator(agents, db))
        started: list[str] = []

        def run_of(name: str, keep: bool = False) -> Any:
            agent = agents[name]

            async def one(_i: int) -> None:
                result = await runner.run(agent, QUESTION)
                assert result.status is RunStatus.SUCCEEDED, result
                if keep:
                    started.append(result.run_id)

            return one

        for key, label, name in (
            ("hop.direct", "root + specialist's work as a direct in-process tool", "direct"),
            ("hop.one", "root -> billing (1 governed hop)", "root1"),
            ("hop.two", "root -> orders -> billing (2 governed hops)", "triage"),
        ):
            samples = await sample_async(run_of(name), n_hop, 5)
            report.add(Measurement(key, label, samples, unit="run"))

        cpu_ms: dict[str, float] = {}
        for key, label, name in (
            ("tree.solo", "one agent, the same read (baseline)", "solo"),
            ("tree.three", "3-level tree, one after another", "triage"),
        ):
            cpu = time.process_time()  # this process's CPU, the journal's writer thread too
            samples = await sample_async(run_of(name, key == "tree.three"), n_tree, 5)
            cpu_ms[key] = (time.process_time() - cpu) * 1000 / (n_tree + 5)
            report.add(Measurement(key, label, samples, unit="tree" if "three" in key else "run"))
        # CPU per item is less at the mercy of other processes than wall time
        report.figure("cpu_solo", "CPU per one-agent run", cpu_ms["tree.solo"], "ms")
        report.figure("cpu_tree", "CPU per 3-level tree", cpu_ms["tree.three"], "ms")

        for key, label, name in (
            ("tree.solo_par", f"one agent, {in_flight} in flight (baseline)", "solo"),
            ("tree.three_par", f"3-level tree, {in_flight} in flight", "triage"),
        ):
            samples, wall = await concurrently(run_of(name), n_tree, in_flight)
            unit = "tree" if "three" in key else "run"
            report.add(Measurement(key, label, samples, unit=unit, wall_ns=wall))

        await journal.flush()
        shape = {len(run_tree(db, root)) for root in started}
        assert shape == {3}, f"every tree has 3 runs, got {shape}"
        journal.close()
        db.close()


async def collect(quick: bool) -> Report:
    report = Report(
        "multiagent",
        "Many agents: A2A round trip, governed delegation per hop, a 3-level tree",
        quick,
        params={"model": "rules", "database": "SQLite (WAL)", "trees": scaled(quick, 100, 20)},
    )
    await _a2a(report, scaled(quick, 60, 10))
    await _trees(report, scaled(quick, 100, 20), scaled(quick, 100, 20), 16)
    p50 = {m.key: m.p50_us for m in report.measurements}
    fig = {m.key: m.figures() for m in report.measurements}
    report.figure(
        "a2a_over_floor", "A2A run p50 - HTTP floor p50", p50["a2a.a2a_run"] - p50["a2a.http_floor"],
        "µs",
    )  # fmt: skip
    report.figure(
        "hop_over_direct", "1 governed hop p50 - direct in-process call p50",
        p50["hop.one"] - p50["hop.direct"], "µs",
    )  # fmt: skip
    report.figure(
        "second_hop", "2 hops p50 - 1 hop p50 (one more governed hop)",
        p50["hop.two"] - p50["hop.one"], "µs",
    )  # fmt: skip
    report.figure(
        "tree_over_solo", "3-level tree p50 / one-agent run p50",
        p50["tree.three"] / p50["tree.solo"], "x",
    )  # fmt: skip
    report.figure("trees_per_s", "3-level trees/s, 16 in flight",
                  fig["tree.three_par"]["throughput_per_s"], "/s")  # fmt: skip
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
