"""Adapter overhead: a tool call governed through each framework adapter against the same
framework's ungoverned tool call, measured in the same run.

One function per framework, registered in FRAMEWORKS; each opens steward on a temporary
SQLite file and times, call by call, (a) the framework executing a trivial tool call on
its own and (b) the same call through the adapter (steward's gate: decide, write-ahead
intent, record the result), in runs of a few calls. Every governed call has a fresh call
id, so the gate never replays a recorded outcome. A framework whose package is not
installed is skipped.
"""

from __future__ import annotations

import gc
import importlib.util
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import steward
from _common import Measurement, Report, main, scaled

RUN_LENGTH = 10  # tool calls per run

LANGGRAPH_SPEC = """
name: bench-langgraph
model: external
tools: [echo]
decision_authority:
  autonomous: [echo]
"""


async def bench_langgraph(report: Report, quick: bool, workdir: Path) -> None:
    """A one-node graph (ToolNode) per call, plain vs governed, interleaved call by call.
    Runs are RUN_LENGTH calls long (a new run, untimed, every RUN_LENGTH calls): steward's
    per-call cost grows with the run's length (provenance re-walks its messages each call)."""
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    from steward.adapters.langgraph import declare_tools, govern_tools

    @tool
    def echo(n: int) -> str:
        """Return n: a trivial tool."""
        return str(n)

    def message(i: int) -> dict[str, Any]:
        call = {"name": "echo", "args": {"n": i}, "id": f"c{i}", "type": "tool_call"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    def graph_of(node: ToolNode) -> Any:  # a ToolNode runs inside a graph
        graph = StateGraph(MessagesState)
        graph.add_node("tools", node)
        graph.add_edge(START, "tools")
        return graph.compile()

    specs = workdir / "langgraph"
    specs.mkdir()
    (specs / "bench-langgraph.yaml").write_text(LANGGRAPH_SPEC, encoding="utf-8")
    n = scaled(quick, 2000, 200)
    warmup = scaled(quick, 100, 20)
    plain = graph_of(ToolNode([echo]))
    base_ns: list[int] = []
    gov_ns: list[int] = []
    clock = time.perf_counter_ns
    async with await steward.open(f"sqlite:///{workdir / 'langgraph.db'}", specs=specs) as st:
        governed: Any = None
        run: steward.Run | None = None
        for i in range(warmup + n):
            if i % RUN_LENGTH == 0:
                if run is not None:
                    await run.finish("done")
                run = await st.start_run("bench-langgraph", "bench", tools=declare_tools([echo]))
                governed = graph_of(govern_tools(run, [echo]))
                gc.collect()
            began = clock()
            await plain.ainvoke(message(i))
            middle = clock()
            await governed.ainvoke(message(i))
            ended = clock()
            if i >= warmup:
                base_ns.append(middle - began)
                gov_ns.append(ended - middle)
        if run is not None:
            await run.finish("done")
    base = report.add(Measurement(
        "langgraph.ungoverned", "LangGraph ToolNode, ungoverned (baseline)", base_ns
    ))  # fmt: skip
    gov = report.add(Measurement(
        "langgraph.governed", "LangGraph ToolNode through steward.adapters.langgraph", gov_ns,
        note=f"decide + durable intent + recorded result; SQLite; runs of {RUN_LENGTH} calls",
    ))  # fmt: skip
    report.params["langgraph.run_length"] = RUN_LENGTH
    report.figure(
        "langgraph.overhead_p50_us", "LangGraph: added latency per tool call, p50",
        gov.p50_us - base.p50_us, "µs",
    )  # fmt: skip


Bench = Callable[[Report, bool, Path], Awaitable[None]]
FRAMEWORKS: dict[str, Bench] = {
    "langgraph": bench_langgraph,
}
# the package each framework needs; a framework whose package is missing is skipped
PACKAGES: dict[str, str] = {
    "langgraph": "langgraph",
}


async def collect(quick: bool) -> Report:
    report = Report("adapters", "Adapter overhead: governed vs ungoverned tool call", quick)
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in FRAMEWORKS.items():
            package = PACKAGES.get(name, name)
            if importlib.util.find_spec(package) is None:
                report.params[f"{name}.skipped"] = f"{package} is not installed"
                continue
            await bench(report, quick, Path(tmp))
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
