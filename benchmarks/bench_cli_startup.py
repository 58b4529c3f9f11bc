"""CLI start-up: wall time of `steward --help`, `steward --version` and one light command
(`steward runs list --limit 1` on a fresh database), each a new Python process, for this
tree and for a baseline tree (default: commit 70de25f, before start-up was made light),
measured in the same run with the two interleaved so both see the same machine load.

The baseline tree is a git worktree at /tmp/cli-base (made here with
`git worktree add /tmp/cli-base 70de25f` when missing; --baseline-src names another
`src`). The baseline has no `--version`: it answers "No such option" with exit 2 after
the same start-up, which is what is timed. Target: `steward --help` p50 under 300 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Measurement, Report, main, scaled

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "70de25f"
BASELINE = Path(os.environ.get("STEWARD_BASELINE_SRC", "/tmp/cli-base/src"))
TARGET_MS = 300.0
LAUNCH = "import sys\nfrom steward.cli.main import main\nsys.argv[0] = 'steward'\nsys.exit(main())"


def _baseline_src() -> Path | str:
    """The baseline's `src`, or why there is none (a shallow clone lacks the commit)."""
    if not (BASELINE / "steward" / "cli" / "main.py").exists():
        made = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(BASELINE.parent),
             BASELINE_COMMIT],
            check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if made.returncode != 0:
            return f"unavailable: {made.stderr.strip().splitlines()[-1:]}"
    return BASELINE


def _timed(src: Path, args: list[str], env: dict[str, str]) -> tuple[int, int]:
    """Wall time and CPU time (user + system) of one process, in ns. On a loaded machine
    the wall time grows with the load; the CPU time much less (it is what an idle
    machine's wall time comes to, start-up being single-threaded and CPU-bound)."""
    start = time.perf_counter_ns()
    child = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        env={**env, "PYTHONPATH": str(src)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _pid, _status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter_ns() - start
    child.returncode = 0  # reaped by wait4 above
    return wall, int((usage.ru_utime + usage.ru_stime) * 1e9)


def measure(quick: bool) -> Report:
    runs = scaled(quick, 30, 5)
    warmup = 2
    baseline = _baseline_src()
    trees = {"this tree": ROOT / "src"}
    if isinstance(baseline, Path):
        trees[f"baseline {BASELINE_COMMIT}"] = baseline
    commands = {"--help": ["--help"], "--version": ["--version"],
                "runs list": ["runs", "list", "--limit", "1"]}  # fmt: skip
    report = Report("cli_startup", "steward CLI start-up (new process per call)", quick,
                    params={"runs": runs, "warmup": warmup,
                            "baseline": str(baseline)})  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"STEWARD_DB": f"sqlite:///{home}/steward.db", "STEWARD_TELEMETRY": "off"}
        subprocess.run([sys.executable, "-c", LAUNCH, "db", "init"], env={**env,
                       "PYTHONPATH": str(ROOT / "src")}, check=True, capture_output=True)  # fmt: skip
        samples: dict[tuple[str, str], list[int]] = {(t, c): [] for t in trees for c in commands}
        cpu: dict[tuple[str, str], list[int]] = {(t, c): [] for t in trees for c in commands}
        for i in range(warmup + runs):
            for command, args in commands.items():
                for tree, src in trees.items():  # interleaved: both see the same load
                    took, used = _timed(src, args, env)
                    if i >= warmup:
                        samples[(tree, command)].append(took)
                        cpu[(tree, command)].append(used)
    for (tree, command), taken in samples.items():
        report.add(Measurement(f"{command} [{tree}]", f"steward {command} ({tree}), wall",
                               taken, unit="process"))  # fmt: skip
        report.add(Measurement(f"{command} [{tree}] cpu", f"steward {command} ({tree}), CPU",
                               cpu[(tree, command)], unit="process"))  # fmt: skip
    for command in commands:
        ours = sorted(samples[("this tree", command)])
        ours_ms = ours[len(ours) // 2] / 1e6
        report.figure(f"{command} p50", f"steward {command} p50 (this tree)", ours_ms, "ms",
                      f"< {TARGET_MS:.0f} ms" if command == "--help" else "",
                      ours_ms < TARGET_MS if command == "--help" else None)  # fmt: skip
        used = sorted(cpu[("this tree", command)])
        report.figure(f"{command} cpu p50", f"steward {command} CPU p50 (this tree)",
                      used[len(used) // 2] / 1e6, "ms")  # fmt: skip
        if not isinstance(baseline, Path):
            continue
        theirs = sorted(samples[(f"baseline {BASELINE_COMMIT}", command)])
        theirs_ms = theirs[len(theirs) // 2] / 1e6
        report.figure(f"{command} speed-up", f"steward {command}: baseline p50 / this p50",
                      theirs_ms / ours_ms, "x")  # fmt: skip
    return report


async def collect(quick: bool) -> Report:
    return measure(quick)  # processes, timed one at a time: nothing to overlap


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
