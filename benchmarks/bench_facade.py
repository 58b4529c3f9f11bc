"""The facade's overhead: what a call governed through `import steward` costs on top of
calling the tool directly, in the same run.

Measured: the direct call (baseline); `run.call` of a read and of a write (the write's
intent is made durable first); `run.decide` + `run.record_result` (decide-only, the
framework runs the tool); `run.model_call` around a (free) stand-in for an LLM call under
a budget (reserve before, settle after); and `st.start_run`. Everything on a temporary
SQLite file; each `run.call` answer is durable before it returns (one commit per call).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import steward
from _common import Measurement, Report, main, sample_async, scaled

SPEC = """
name: bench-facade
model: external
tools: [lookup, note]
decision_authority:
  autonomous: [lookup, note]
cost_controls: {max_daily_spend_usd: 1000000}
"""


def lookup(n: int) -> dict[str, Any]:
    return {"id": n, "status": "ok"}


async def note(n: int) -> dict[str, Any]:
    return {"id": n, "status": "ok"}


async def collect(quick: bool) -> Report:
    n = scaled(quick, 2_000, 200)
    n_runs = scaled(quick, 500, 50)
    warm = scaled(quick, 200, 20)
    report = Report("facade", "A governed call through the public facade", quick)
    tools = [
        steward.external_tool("lookup", lookup, effect="read"),
        steward.external_tool("note", note),
    ]

    async def direct(i: int) -> Any:
        return await note(i)

    baseline = report.add(
        Measurement("direct", "baseline: await tool(**args)", await sample_async(direct, n, warm))
    )
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        (Path(tmp) / "agent.yaml").write_text(SPEC, encoding="utf-8")
        async with steward.open(f"sqlite:///{Path(tmp) / 'b.db'}", specs=tmp) as st:
            run = await st.start_run("bench-facade", "benchmark", tools=tools)

            async def read(i: int) -> Any:
                return await run.call("lookup", {"n": i}, call_id=f"r{i}")

            async def write(i: int) -> Any:
                return await run.call("note", {"n": i}, call_id=f"w{i}")

            async def decide_only(i: int) -> Any:
                await run.decide("note", {"n": i}, call_id=f"d{i}")
                return await run.record_result(f"d{i}", {"id": i, "status": "ok"})

            async def model(i: int) -> None:
                async with run.model_call(
                    "openai:gpt-4o-mini", max_output_tokens=100, max_input_tokens=1000
                ) as call:
                    call.settle(input_tokens=500, output_tokens=50)

            async def start(i: int) -> Any:
                return await st.start_run("bench-facade", f"run {i}", tools=tools)

            calls = [
                report.add(
                    Measurement("read", "run.call, read", await sample_async(read, n, warm))
                ),
                report.add(
                    Measurement(
                        "write",
                        "run.call, write (intent durable first)",
                        await sample_async(write, n, warm),
                    )
                ),
                report.add(
                    Measurement(
                        "decide_only",
                        "run.decide + run.record_result, write",
                        await sample_async(decide_only, n, warm),
                    )
                ),
            ]
            budgeted = report.add(
                Measurement(
                    "model_call",
                    "run.model_call under a daily budget",
                    await sample_async(model, n, warm),
                )
            )
            report.add(
                Measurement(
                    "start_run", "st.start_run", await sample_async(start, n_runs, warm), unit="run"
                )
            )
            await run.finish("done", confidence=1.0)
    base = baseline.p50_us
    for m in calls:
        report.figure(f"overhead_{m.key}", f"overhead p50: {m.label}", m.p50_us - base, "µs")
    report.figure("model_call_p50", "model call bookkeeping p50", budgeted.p50_us, "µs")
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
