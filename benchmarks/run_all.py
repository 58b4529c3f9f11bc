"""Run every benchmark (gate, journal, runner, ..., limits), each in its own interpreter.

`--quick` and `--json` are passed through; with `--json` the three JSON objects are printed
as one: {"gate": {...}, "journal": {...}, "runner": {...}}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _common import parse_args

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "gate": "bench_gate.py",
    "journal": "bench_journal.py",
    "dispatch": "bench_dispatch.py",
    "runner": "bench_runner.py",
    "telemetry": "bench_telemetry.py",
    "providers": "bench_providers.py",
    "semantic_cache": "bench_semantic_cache.py",
    "server": "bench_server.py",
    "a2a": "bench_a2a.py",
    "multiagent": "bench_multiagent.py",
    "scanners": "bench_scanners.py",
    "limits": "bench_limits.py",
    "drift": "bench_drift.py",
    "resume": "bench_resume.py",
    "facade": "bench_facade.py",
    "cli_startup": "bench_cli_startup.py",
    "stats": "bench_stats.py",
    "adapter_openai_agents": "bench_adapter_openai_agents.py",
    "adapter_pydantic_ai": "bench_adapter_pydantic_ai.py",
    "adapter_langgraph": "bench_adapter_langgraph.py",
    "engines": "bench_engines.py",  # the `temporal` extra (in dev): starts a dev server
    "temporal_tree": "bench_temporal_tree.py",  # the same: delegation on the temporal engine
    "mcp_tools": "bench_mcp_tools.py",
    "mcp": "bench_mcp.py",
}


def main() -> int:
    args = parse_args(__doc__)
    flags = [flag for flag, on in (("--quick", args.quick), ("--json", args.json)) if on]
    combined: dict[str, object] = {}
    failed: list[str] = []
    started = time.perf_counter()
    for name, script in BENCHMARKS.items():
        command = [sys.executable, str(HERE / script), *flags]
        if args.json:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                combined[name] = json.loads(done.stdout)
            else:
                sys.stderr.write(done.stderr)
                combined[name] = {"error": f"exit status {done.returncode}"}
        else:
            done = subprocess.run(command, check=False)
        if done.returncode != 0:
            failed.append(name)
    if args.json:
        print(json.dumps(combined, indent=2))
    else:
        elapsed = time.perf_counter() - started
        status = f"failed: {', '.join(failed)}" if failed else "all ok"
        print(f"\n{len(BENCHMARKS)} benchmarks in {elapsed:.1f} s ({status})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
