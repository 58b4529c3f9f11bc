"""Adapter overhead: a framework's agent run with one tool call, governed by steward through
its adapter, against the same agent ungoverned, measured in the same run.

Each framework registers one function in `FRAMEWORKS`; a framework whose package is not
installed is skipped (and named in the params). Each sample is one whole agent run: two
model calls (a scripted model, no network) and one tool call. The governed run adds, per
sample: a decision and a recorded result for the tool call, and two priced, budgeted
model-call records, on a temporary SQLite file. A new steward run is started for each
sample outside the timed region. The variants are timed in turn within each round
(`_interleaved`), so the load of a shared machine falls on all of them alike; "the same
through the facade alone" does the governed run's steward work without the SDK, so the
adapter's own share is what remains.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import steward
from _common import Measurement, Report, main, scaled

SPEC = """\
name: bench-adapter
model: external
tools: [lookup_order]
decision_authority:
  autonomous: [lookup_order]
cost_controls:
  max_cost_per_run_usd: 100.0
  max_daily_spend_usd: 1000000.0
"""

MODEL = "openai:gpt-4o-mini"

Bench = Callable[[Report, steward.Steward, int, int], Awaitable[None]]


async def _interleaved(
    variants: dict[str, tuple[Callable[[Any], Awaitable[Any]], Callable[[int], Awaitable[Any]]]],
    n: int,
    warmup: int,
) -> dict[str, list[int]]:
    """Time each variant once per round, in turn, so a shared machine's load falls on all
    of them alike. A variant is (timed fn, untimed setup(i) whose value fn receives)."""
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for i in range(warmup + n):
        if i == warmup:
            gc.collect()
        for name, (fn, setup) in variants.items():
            prepared = await setup(i)
            start = time.perf_counter_ns()
            await fn(prepared)
            if i >= warmup:
                samples[name].append(time.perf_counter_ns() - start)
    return samples


def _overhead(
    report: Report, key: str, label: str, base: Measurement, governed: Measurement
) -> None:
    for pct in (50, 95, 99):
        value = governed._us(pct) - base._us(pct)
        report.figure(f"{key}_p{pct}", f"{label}: governed - ungoverned, p{pct}", value, "µs/run")


# -- OpenAI Agents SDK ----------------------------------------------------------------------


async def bench_openai_agents(report: Report, st: steward.Steward, n: int, warmup: int) -> None:
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    from agents import Agent, Runner, function_tool

    from steward.adapters.openai_agents import declarations, start
    from steward.testing.openai_agents import FakeModel, call

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return f"order {order_id}: delivered"

    def agent(i: int) -> Agent[Any]:
        model = FakeModel([[call("lookup_order", {"order_id": str(i)}, f"call_{i}")]])
        return Agent(name="bench", tools=[lookup_order], model=model)

    async def plain_setup(i: int) -> Agent[Any]:
        return agent(i)

    async def plain(prepared: Agent[Any]) -> None:
        await Runner.run(prepared, "look it up")

    async def governed_setup(i: int) -> Agent[Any]:
        governed = await start(st, "bench-adapter", agent(i), "look it up", model_name=MODEL)
        return governed.agent

    async def governed(prepared: Agent[Any]) -> None:
        result = await Runner.run(prepared, "look it up")
        assert "delivered" in str(result.final_output), result.final_output

    # what the facade alone costs for the same work, without the SDK or the adapter
    async def facade_setup(i: int) -> steward.Run:
        return await st.start_run("bench-adapter", "look it up", tools=await declarations(agent(i)))

    async def facade_only(run: steward.Run) -> None:
        for step in ("decide", "model"):
            async with run.model_call(MODEL) as model_call:
                model_call.settle(input_tokens=200, output_tokens=50)
            if step == "decide":
                verdict = await run.decide("lookup_order", {"order_id": "1"}, call_id="c1")
                assert isinstance(verdict, steward.Allowed), verdict
                await run.record_result("c1", "order 1: delivered")

    timed = await _interleaved(
        {
            "plain": (plain, plain_setup),
            "governed": (governed, governed_setup),
            "facade": (facade_only, facade_setup),
        },
        n,
        warmup,
    )
    base = report.add(Measurement("openai_agents_plain", "Agents SDK run, ungoverned",
                                  timed["plain"], unit="run"))  # fmt: skip
    gov = report.add(Measurement("openai_agents_governed", "Agents SDK run, governed",
                                 timed["governed"], unit="run",
                                 note="1 tool call + 2 model calls through steward"))  # fmt: skip
    alone = report.add(Measurement("openai_agents_facade", "the same through the facade alone",
                                   timed["facade"], unit="run",
                                   note="decide + record_result + 2 model_call, no SDK"))  # fmt: skip
    _overhead(report, "openai_agents_overhead", "Agents SDK", base, gov)
    report.figure(
        "openai_agents_adapter_share_p50",
        "Agents SDK: adapter's own share (overhead - facade alone), p50",
        gov._us(50) - base._us(50) - alone._us(50),
        "µs/run",
    )


FRAMEWORKS: dict[str, tuple[str, Bench]] = {
    # name -> (the package it needs, its benchmark)
    "openai-agents": ("agents", bench_openai_agents),
}


async def collect(quick: bool) -> Report:
    report = Report(
        "adapter_openai_agents", "Adapter overhead: governed vs ungoverned framework runs", quick
    )
    n, warmup = scaled(quick, 300, 30), scaled(quick, 20, 5)
    report.params.update(samples=n, warmup=warmup)
    missing = [
        name for name, (pkg, _) in FRAMEWORKS.items() if importlib.util.find_spec(pkg) is None
    ]
    report.params["skipped"] = ",".join(missing) or "none"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench-adapter.yaml").write_text(SPEC, encoding="utf-8")
        async with await steward.open(f"sqlite:///{tmp}/steward.db", specs=tmp) as st:
            for name, (_, bench) in FRAMEWORKS.items():
                if name not in missing:
                    await bench(report, st, n, warmup)
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
