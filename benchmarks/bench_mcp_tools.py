"""MCP tools of a steward agent: what governing a call to an MCP server's tool costs on top
of calling it with the SDK directly, same server (tests/mcp_servers/servers.py over
stdio), same run.

Baseline: `Client.call_tool("add")` on a session held by the benchmark's own loop. Then
the same call through steward's hub (the session lives on its own thread: one hop each
way), and the whole gate (validate against the inputSchema, the pin check, policy,
execute, result scan) against an in-memory RunScope, with pins in a temporary SQLite.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from _common import Measurement, Report, main, sample_async, scaled
from steward.core.agent_state import DEFAULT_STATE
from steward.core.messages import ToolCall
from steward.gate import Gate, GateConfig
from steward.mcp import HUB, mcp_tools
from steward.policy import compile_policy
from steward.spec import load_spec_text
from steward.store import Database
from steward.store.limits import MemoryLimits
from steward.testing import MemoryScope

SERVER = Path(__file__).resolve().parents[1] / "tests" / "mcp_servers" / "servers.py"
SPEC = f"""
name: bench-mcp
model: scripted
tools: [calc.add]
decision_authority:
  autonomous: [calc.add]
mcp_servers:
  calc:
    command: {sys.executable}
    args: [{SERVER}, stdio]
    trust_annotations: true
"""


async def collect(quick: bool) -> Report:
    n = scaled(quick, 3_000, 300)
    warm = scaled(quick, 200, 50)
    report = Report("mcp_tools", "MCP tool calls: direct SDK vs steward's hub vs the gate", quick)

    params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "stdio"])
    async with Client(params, cache=None) as client:
        baseline = report.add(
            Measurement(
                "direct",
                "baseline: Client.call_tool (SDK, own loop)",
                await sample_async(lambda i: client.call_tool("add", {"a": i, "b": 1}), n, warm),
            )
        )

    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'pins.db'}")
        loaded = load_spec_text(SPEC, "bench-mcp.yaml")
        tools = {t.name: t for t in mcp_tools(loaded, db)}
        supervisor = HUB.supervisor("calc", loaded.spec.mcp_servers["calc"])
        hub = report.add(
            Measurement(
                "hub",
                "through steward's hub (session on its own thread)",
                await sample_async(
                    lambda i: HUB.run(supervisor.call("add", {"a": i, "b": 1}, 30.0)), n, warm
                ),
            )
        )
        policy = compile_policy(loaded.spec, loaded.version, tools)
        gate = Gate(policy, tools, GateConfig(lambda _a: DEFAULT_STATE, MemoryLimits()))
        scope = MemoryScope("run_bench", policy.agent, policy.version)
        calls = [ToolCall(f"c{i}", "calc.add", {"a": i, "b": 1}) for i in range(warm + n)]
        governed = report.add(
            Measurement(
                "governed",
                "governed: gate.process (pin check, validate, policy, execute, scan)",
                await sample_async(lambda i: gate.process(scope, calls[i], i), n, warm),
            )
        )
        HUB.stop()
        db.close()
    base = baseline.p50_us
    report.figure("hub_added_p50_us", "hub: added p50 over direct", hub.p50_us - base, "µs")
    report.figure(
        "governed_added_p50_us", "governed: added p50 over direct", governed.p50_us - base, "µs"
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
