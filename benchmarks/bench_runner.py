"""Runner overhead: (a) µs per step of whole runs driven by a zero-latency ScriptedModel and
a trivial tool, against calling the model and the tool directly in a loop; (b) wall time of
one turn of 5 independent tools that each sleep 100 ms (the gate runs them concurrently),
against running them one after another. Runs are journaled to a temporary SQLite file.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from _common import Measurement, Report, main, sample_async, scaled
from steward.core.events import RunStatus
from steward.core.messages import Message
from steward.engines.embedded import EmbeddedEngine
from steward.models.protocol import ModelRequest
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import Tool, tool

STEPS = 20  # tool steps per run in (a); each run ends with one more turn: the answer
PARALLEL = 5
SLEEP = 0.1

SPEC = """
name: bench-runner
model: scripted
tools: [lookup, slow]
decision_authority:
  autonomous: [lookup, slow]
limits:
  max_steps: 50
  max_run_seconds: 60
"""

PROMPT = "Where is order 10042?"


async def lookup(n: int) -> dict[str, Any]:
    """A trivial read."""
    return {"id": n, "status": "ok"}


async def slow(n: int) -> dict[str, Any]:
    """An independent call that waits on I/O for 100 ms."""
    await asyncio.sleep(SLEEP)
    return {"id": n, "status": "ok"}


TOOLS: list[Tool] = [tool(effect="read")(lookup), tool(effect="read")(slow)]


def agent_with(script: list[Any]) -> AgentRuntime:
    loaded = load_spec_text(SPEC, "bench-runner.yaml")
    return build_agent(loaded, TOOLS, model=ScriptedModel(script))


def stepping_script(steps: int) -> list[Any]:
    return [calls(("lookup", {"n": step})) for step in range(steps)] + [final("done")]


async def direct_loop(agent: AgentRuntime) -> None:
    """The same conversation without steward: ask the model, run the tool, feed it back."""
    model = agent.model
    functions = {name: t.function for name, t in agent.tools.items()}
    specs = tuple(t.spec() for t in agent.tools.values())
    messages = [Message("user", PROMPT)]
    while True:
        response = await model.respond(ModelRequest(tuple(messages), specs))
        messages.append(Message("assistant", response.text, response.tool_calls))
        if response.is_final:
            return
        for call in response.tool_calls:
            result = await functions[call.name](**call.arguments)
            body = msgspec.json.encode({"ok": True, "result": result}).decode()
            messages.append(Message("tool", body, tool_call_id=call.id, name=call.name))


async def governed_run(runner: Runner, agent: AgentRuntime) -> None:
    result = await runner.run(agent, PROMPT)
    if result.status is not RunStatus.SUCCEEDED:
        raise RuntimeError(f"run ended {result.status}: {result.reason_code} {result.reason}")
    if isinstance(agent.model, ScriptedModel):
        agent.model.requests.clear()  # the scripted model keeps every request it saw


async def collect(quick: bool) -> Report:
    n_runs = scaled(quick, 300, 30)
    n_single = scaled(quick, 1_000, 100)
    warm = scaled(quick, 20, 5)
    n_parallel = scaled(quick, 10, 3)
    n_sequential = scaled(quick, 3, 1)

    report = Report(
        "runner",
        "Runner overhead per step, and parallel tool calls",
        quick,
        params={"steps_per_run": STEPS, "parallel_tools": PARALLEL, "tool_sleep_s": SLEEP},
    )
    stepping = agent_with(stepping_script(STEPS))
    one_step = agent_with(stepping_script(1))
    fan_out = agent_with([calls(*(("slow", {"n": i}) for i in range(PARALLEL))), final("all done")])

    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'b.db'}")
        journal = Journal(db)
        runner = Runner(EmbeddedEngine(db, journal))
        try:
            # -- (a) per-step overhead -------------------------------------------------
            direct = report.add(
                Measurement(
                    "direct_loop",
                    f"baseline: model + tool loop, {STEPS} steps + answer",
                    await sample_async(lambda _i: direct_loop(stepping), n_runs, warm),
                    per_sample=STEPS,
                    unit="step",
                    note="µs per step",
                )
            )
            governed = report.add(
                Measurement(
                    "runner_steps",
                    f"Runner.run, {STEPS} steps + answer",
                    await sample_async(lambda _i: governed_run(runner, stepping), n_runs, warm),
                    per_sample=STEPS,
                    unit="step",
                    note="µs per step, run amortised",
                )
            )
            single_direct = report.add(
                Measurement(
                    "direct_loop_1",
                    "baseline: model + tool loop, 1 step + answer",
                    await sample_async(lambda _i: direct_loop(one_step), n_single, warm),
                    unit="run",
                )
            )
            single = report.add(
                Measurement(
                    "runner_1",
                    "Runner.run, 1 step + answer",
                    await sample_async(lambda _i: governed_run(runner, one_step), n_single, warm),
                    unit="run",
                    note="whole run: fixed costs",
                )
            )

            # -- (b) one turn of 5 independent 100 ms tools ------------------------------
            slow_fn = fan_out.tools["slow"].function

            async def one_by_one(_i: int) -> None:
                for n in range(PARALLEL):
                    await slow_fn(n=n)

            async def together(_i: int) -> None:
                await asyncio.gather(*(slow_fn(n=n) for n in range(PARALLEL)))

            sequential = report.add(
                Measurement(
                    "sequential_tools",
                    f"baseline: {PARALLEL} tools one after another",
                    await sample_async(one_by_one, n_sequential, 0),
                    unit="turn",
                )
            )
            floor = report.add(
                Measurement(
                    "gather_tools",
                    f"floor: asyncio.gather of {PARALLEL} tools",
                    await sample_async(together, n_parallel, 1),
                    unit="turn",
                )
            )
            parallel = report.add(
                Measurement(
                    "runner_parallel",
                    f"Runner.run, one turn of {PARALLEL} tools",
                    await sample_async(lambda _i: governed_run(runner, fan_out), n_parallel, 1),
                    unit="run",
                    note="whole run incl. answer turn",
                )
            )
            if journal.stats.last_error:
                raise RuntimeError(f"journal failed: {journal.stats.last_error}")
        finally:
            journal.close()
            db.close()

    report.figure(
        "overhead_per_step",
        f"overhead per step p50 ({STEPS}-step runs)",
        governed.p50_us - direct.p50_us,
        "µs",
    )
    report.figure(
        "overhead_per_run_1",
        "overhead per 1-step run p50",
        single.p50_us - single_direct.p50_us,
        "µs",
    )
    parallel_ms = parallel.p50_us / 1000
    report.figure(
        "parallel_turn_ms",
        f"run with {PARALLEL} parallel 100 ms tools, p50",
        parallel_ms,
        "ms",
        "≈ 100 ms (≤ 120)",
        parallel_ms <= 120.0,
    )
    report.figure(
        "parallel_overhead_ms",
        "  of which beyond asyncio.gather floor",
        parallel_ms - floor.p50_us / 1000,
        "ms",
    )
    report.figure("sequential_turn_ms", "sequential baseline p50", sequential.p50_us / 1000, "ms")
    report.figure(
        "parallel_speedup", "speed-up vs sequential", sequential.p50_us / parallel.p50_us, "x"
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
