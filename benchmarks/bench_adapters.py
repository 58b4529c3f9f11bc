"""Adapter overhead: a tool call governed through each framework adapter against the same
framework's ungoverned tool call, measured in the same run.

One function per framework, registered in FRAMEWORKS; each opens steward on a temporary
SQLite file, starts one run, and times (a) the framework executing a trivial tool call on
its own and (b) the same call through the adapter (steward's gate: decide, write-ahead
intent, record the result). Every governed call has a fresh call id, so the gate never
replays a recorded outcome. A framework whose package is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import steward
from _common import Measurement, Report, main, sample_async, scaled

LANGGRAPH_SPEC = """
name: bench-langgraph
model: external
tools: [echo]
decision_authority:
  autonomous: [echo]
"""


async def bench_langgraph(report: Report, quick: bool, workdir: Path) -> None:
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    from steward.adapters.langgraph import declare_tools, govern_tools

    @tool
    def echo(n: int) -> str:
        """Return n: a trivial tool."""
        return str(n)

    def message(i: int, prefix: str) -> dict[str, Any]:
        call = {"name": "echo", "args": {"n": i}, "id": f"{prefix}{i}", "type": "tool_call"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    specs = workdir / "langgraph"
    specs.mkdir()
    (specs / "bench-langgraph.yaml").write_text(LANGGRAPH_SPEC, encoding="utf-8")
    n = scaled(quick, 2000, 200)
    warmup = scaled(quick, 100, 20)
    async with await steward.open(f"sqlite:///{workdir / 'langgraph.db'}", specs=specs) as st:
        run = await st.start_run("bench-langgraph", "benchmark", tools=declare_tools([echo]))

        def graph_of(node: ToolNode) -> Any:  # a ToolNode runs inside a graph
            graph = StateGraph(MessagesState)
            graph.add_node("tools", node)
            graph.add_edge(START, "tools")
            return graph.compile()

        plain = graph_of(ToolNode([echo]))
        governed = graph_of(govern_tools(run, [echo]))

        async def ungoverned_call(i: int) -> object:
            return await plain.ainvoke(message(i, "u"))

        async def governed_call(i: int) -> object:
            return await governed.ainvoke(message(i, "g"))

        base = report.add(Measurement(
            "langgraph.ungoverned", "LangGraph ToolNode, ungoverned (baseline)",
            await sample_async(ungoverned_call, n, warmup),
        ))  # fmt: skip
        gov = report.add(Measurement(
            "langgraph.governed", "LangGraph ToolNode through steward.adapters.langgraph",
            await sample_async(governed_call, n, warmup),
            note="decide + durable intent + recorded result, SQLite journal",
        ))  # fmt: skip
        await run.finish("done")
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
