"""Gate overhead: what governing one tool call costs on top of calling the tool directly.

All in one run: the direct call (baseline), the policy decision alone, the whole stage
pipeline against an in-memory RunScope, and the full stack (EmbeddedExecutor + Journal on
a temporary SQLite file) for a read, a keyed write (intent made durable first: includes a
group-commit wait), and 64 concurrent calls in flight. Every governed call has a unique
call id and step, so the gate never replays a recorded outcome.

With STEWARD_BENCH_AGT_PYTHON naming an interpreter that has Microsoft's Agent Governance
Toolkit (`pip install agent-governance-toolkit-core`), its `govern()` on one allowed call
is timed in the same run (benchmarks/_agt_govern.py, in that interpreter, between steward's
in-memory and full-stack figures): a policy decision and an in-memory audit record, which
compares with steward's in-memory pipeline; steward's keyed write also makes its intent
durable first.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import Measurement, Report, main, sample_async, sample_sync, scaled
from steward.core.agent_state import DEFAULT_STATE
from steward.core.messages import ToolCall
from steward.engines.embedded import EmbeddedExecutor
from steward.gate import Gate, GateConfig
from steward.policy import compile_policy
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.limits import MemoryLimits
from steward.testing import MemoryScope
from steward.tools import Tool, tool

SPEC = """
name: bench-gate
model: scripted
tools: [echo, echo_checked, put]
decision_authority:
  autonomous: [echo, echo_checked, put]
conditions:
  - id: n-too-large
    tool: echo_checked
    when: args.n > 1000000000
    then: forbidden
    reason: n is out of range
"""

CONCURRENCY = 64


async def echo(n: int) -> dict[str, Any]:
    """A trivial read: returns a small dict."""
    return {"id": n, "status": "ok"}


async def echo_checked(n: int) -> dict[str, Any]:
    """The same, governed by one CEL condition."""
    return {"id": n, "status": "ok"}


async def put(n: int) -> dict[str, Any]:
    """A trivial keyed write."""
    return {"id": n, "status": "ok"}


TOOLS: dict[str, Tool] = {
    "echo": tool(effect="read")(echo),
    "echo_checked": tool(effect="read")(echo_checked),
    "put": tool(effect="write", keyed=True)(put),
}


def build_gate() -> Gate:
    loaded = load_spec_text(SPEC, "bench-gate.yaml")
    policy = compile_policy(loaded.spec, loaded.version, TOOLS)
    # in-process limits and the default state: the gate's own cost, no store round trip
    config = GateConfig(states=lambda _agent: DEFAULT_STATE, limits=MemoryLimits())
    return Gate(policy, TOOLS, config)


def tool_calls(name: str, count: int, prefix: str) -> list[ToolCall]:
    return [ToolCall(f"{prefix}{i}", name, {"n": i}) for i in range(count)]


async def collect(quick: bool) -> Report:
    n_direct = scaled(quick, 50_000, 5_000)
    n_policy = scaled(quick, 50_000, 5_000)
    n_memory = scaled(quick, 20_000, 2_000)
    n_read = scaled(quick, 10_000, 1_000)
    n_write = scaled(quick, 4_000, 400)
    n_batches = scaled(quick, 150, 15)
    warm = scaled(quick, 1_000, 200)
    warm_batches = scaled(quick, 10, 3)

    report = Report(
        "gate",
        "Gate overhead per tool call",
        quick,
        params={"concurrency": CONCURRENCY},
    )
    gate = build_gate()
    policy = gate.policy

    # -- baseline: the tool called directly ------------------------------------------
    fn = TOOLS["echo"].function
    direct_args = [{"n": i} for i in range(warm + n_direct)]
    baseline = report.add(
        Measurement(
            "direct",
            "baseline: await fn(**args)",
            await sample_async(lambda i: fn(**direct_args[i]), n_direct, warm),
        )
    )

    # -- policy decision alone -------------------------------------------------------
    plain_calls = tool_calls("echo", warm + n_policy, "p")
    checked_calls = tool_calls("echo_checked", warm + n_policy, "q")
    plain = report.add(
        Measurement(
            "policy_plain",
            "policy.evaluate: autonomous, no conditions",
            sample_sync(lambda i: policy.evaluate(plain_calls[i]), n_policy, warm),
            unit="decision",
        )
    )
    report.add(
        Measurement(
            "policy_cel",
            "policy.evaluate: one CEL condition",
            sample_sync(lambda i: policy.evaluate(checked_calls[i]), n_policy, warm),
            unit="decision",
        )
    )

    # -- the whole pipeline, in memory -----------------------------------------------
    scope = MemoryScope("run_memory", policy.agent, policy.version)  # the shipped test scope
    memory_calls = tool_calls("echo", warm + n_memory, "m")
    in_memory = report.add(
        Measurement(
            "governed_memory",
            "governed read, in-memory scope",
            await sample_async(lambda i: gate.process(scope, memory_calls[i], i), n_memory, warm),
            note=f"{len(scope.events) // (warm + n_memory)} events/call",
        )
    )
    scope.events.clear()
    agt = _agt_govern(n_memory, warm)
    if agt is not None:
        report.add(agt)

    # -- the full stack: EmbeddedExecutor + Journal on SQLite ------------------------
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'b.db'}")
        journal = Journal(db)
        try:

            def executor(run_id: str) -> EmbeddedExecutor:
                return EmbeddedExecutor(db, journal, run_id, policy.agent, policy.version)

            reader = executor("run_read")
            read_calls = tool_calls("echo", warm + n_read, "r")
            full_read = report.add(
                Measurement(
                    "governed_read",
                    "governed read, full stack",
                    await sample_async(
                        lambda i: gate.process(reader, read_calls[i], i), n_read, warm
                    ),
                    note="no durability wait",
                )
            )
            await journal.flush()

            writer = executor("run_write")
            write_calls = tool_calls("put", warm + n_write, "w")
            commits_before = journal.stats.commits
            full_write = report.add(
                Measurement(
                    "governed_write",
                    "governed keyed write, full stack",
                    await sample_async(
                        lambda i: gate.process(writer, write_calls[i], i), n_write, warm
                    ),
                    note="intent made durable first",
                )
            )
            await journal.flush()
            write_commits = journal.stats.commits - commits_before

            async def batch(scope: EmbeddedExecutor, calls: list[ToolCall], i: int) -> None:
                start = i * CONCURRENCY
                await asyncio.gather(
                    *(gate.process(scope, calls[start + j], start + j) for j in range(CONCURRENCY))
                )

            many = executor("run_concurrent_read")
            many_calls = tool_calls("echo", (warm_batches + n_batches) * CONCURRENCY, "c")
            concurrent = report.add(
                Measurement(
                    "governed_read_concurrent",
                    f"governed read, full stack, {CONCURRENCY} in flight",
                    await sample_async(
                        lambda i: batch(many, many_calls, i), n_batches, warm_batches
                    ),
                    per_sample=CONCURRENCY,
                    note="amortised per call",
                )
            )
            await journal.flush()

            many_writes = executor("run_concurrent_write")
            many_write_calls = tool_calls("put", (warm_batches + n_batches) * CONCURRENCY, "x")
            commits_before = journal.stats.commits
            events_before = journal.stats.events
            concurrent_write = report.add(
                Measurement(
                    "governed_write_concurrent",
                    f"governed keyed write, full stack, {CONCURRENCY} in flight",
                    await sample_async(
                        lambda i: batch(many_writes, many_write_calls, i),
                        n_batches,
                        warm_batches,
                    ),
                    per_sample=CONCURRENCY,
                    note="amortised per call",
                )
            )
            await journal.flush()
            cw_commits = journal.stats.commits - commits_before
            cw_events = journal.stats.events - events_before
            if journal.stats.last_error:
                raise RuntimeError(f"journal failed: {journal.stats.last_error}")
        finally:
            journal.close()
            db.close()

    # -- derived figures -------------------------------------------------------------
    base = baseline.p50_us
    report.figure(
        "policy_plain_p50",
        "policy p50, autonomous, no conditions",
        plain.p50_us,
        "µs",
        "≤ 5 µs",
        plain.p50_us <= 5.0,
    )
    for key, label, m in (
        ("overhead_memory", "overhead p50: in-memory pipeline", in_memory),
        ("overhead_read", "overhead p50: full stack, read", full_read),
        ("overhead_write", "overhead p50: full stack, keyed write", full_write),
        ("overhead_read_concurrent", "overhead p50: full stack, read x64 (amortised)", concurrent),
        (
            "overhead_write_concurrent",
            "overhead p50: full stack, keyed write x64 (amortised)",
            concurrent_write,
        ),
    ):
        report.figure(key, label, m.p50_us - base, "µs")
    if agt is not None:
        report.figure(
            "write_vs_agt",
            "keyed write p50 (durable) / AGT govern() p50 (in memory), same run",
            full_write.p50_us / agt.p50_us,
            "x",
            "≤ 1x",
            full_write.p50_us <= agt.p50_us,
        )
        report.figure(
            "memory_vs_agt",
            "in-memory governed call p50 / AGT govern() p50, same run",
            in_memory.p50_us / agt.p50_us,
            "x",
        )
    report.figure(
        "read_concurrent_calls_per_s",
        f"throughput, {CONCURRENCY} reads in flight",
        concurrent.figures()["throughput_per_s"],
        "calls/s",
    )
    report.figure(
        "write_commits_per_call",
        "journal commits per sequential keyed write",
        write_commits / max(1, warm + n_write),
    )
    report.figure(
        "write_concurrent_events_per_commit",
        f"events per commit, {CONCURRENCY} keyed writes in flight",
        cw_events / max(1, cw_commits),
    )
    return report


def _agt_govern(n: int, warm: int) -> Measurement | None:
    """AGT's govern() timed in its own interpreter, or None when none is named."""
    python = os.environ.get("STEWARD_BENCH_AGT_PYTHON", "")
    if not python:
        return None
    script = Path(__file__).with_name("_agt_govern.py")
    done = subprocess.run(
        [python, str(script), str(n), str(warm)], capture_output=True, text=True, check=True
    )
    samples = json.loads(done.stdout)["samples_ns"]
    return Measurement("agt_govern", "AGT govern(): one allowed call", samples,
                       note="agent-governance-toolkit-core, in-memory audit")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
