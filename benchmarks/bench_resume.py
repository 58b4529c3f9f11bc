"""Resuming waiting runs at scale: N runs of the demo agent wait for a person to approve a
refund; every request is approved; then `resume_expired` (what `steward approvals sweep`
and the server's sweeper do) resumes them all, one after the other: the refund runs, the
model answers, the run finishes. The figure is the time per resumed run, at 1,000 and at
10,000 waiting runs (each on a fresh SQLite database), alternated; medians of the rounds.
Linear means the per-run cost at 10k is within 1.1x of the cost at 1k.

    python benchmarks/bench_resume.py            # 1k and 10k, 3 rounds
    python benchmarks/bench_resume.py --quick    # 200 and 2k, 1 round
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from _common import Report, main, scaled
from steward.engines.embedded import EmbeddedEngine
from steward.engines.sweep import resume_expired
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.approvals import decide_approval, list_approvals
from steward.store.runs import list_runs

DEMO_SPEC = Path(__file__).resolve().parents[1] / "src/steward/demo/support_agent.yaml"
TICKET = (
    "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
    "Order #10114 arrived without the ultralight tent. Please refund $330 for it."
)
CONCURRENT = 64  # runs started together while the waiting runs are made


def spec_text() -> str:
    """The demo agent without its rate limits (100 refunds an hour would refuse the
    101st), as the crash soak serves it."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["rate_limits"] = {}
    return str(yaml.safe_dump(spec, sort_keys=False))


async def make_waiting(db: Database, journal: Journal, n: int) -> None:
    agent = build_agent(load_spec_text(spec_text(), "support_agent.yaml"))
    runner = Runner(EmbeddedEngine(db, journal))
    for start in range(0, n, CONCURRENT):
        results = await asyncio.gather(
            *(runner.run(agent, TICKET) for _ in range(min(CONCURRENT, n - start)))
        )
        odd = [r for r in results if r.status.value != "waiting"]
        assert not odd, odd[0]
    pending = list_approvals(db, status="pending", limit=n + 1)
    assert len(pending) == n, len(pending)
    for row in pending:
        decide_approval(db, row.id, approve=True, by="bench")


async def one(n: int, tmp: Path, round_: int) -> float:
    """Seconds per resumed run, with `n` waiting runs."""
    os.environ["STEWARD_DEMO_SYSTEMS"] = str(tmp / f"systems-{n}-{round_}.db")
    db = Database.open(f"sqlite:///{tmp / f'resume-{n}-{round_}.db'}")
    journal = Journal(db)
    try:
        await make_waiting(db, journal, n)
        await journal.flush()
        gc.collect()
        started = time.perf_counter()
        results = await resume_expired(db, journal)
        await journal.flush()
        elapsed = time.perf_counter() - started
        finished = [r for r in results if getattr(r, "status", None) is not None]
        assert len(finished) == n, (len(finished), n, results[:3])
        assert len(list_runs(db, status="succeeded", limit=n + 1)) == n
    finally:
        journal.close()
        db.close()
    return elapsed / n


async def collect(quick: bool) -> Report:
    small, large = scaled(quick, 1_000, 200), scaled(quick, 10_000, 2_000)
    rounds = int(os.environ.get("STEWARD_BENCH_ROUNDS") or scaled(quick, 3, 1))
    report = Report(
        "resume",
        "Resuming waiting runs: per-run cost at 1x and 10x as many",
        quick,
        params={"small": small, "large": large, "rounds": rounds},
    )
    found: dict[int, list[float]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        for round_ in range(rounds):
            for n in (small, large) if round_ % 2 == 0 else (large, small):
                found[n].append(await one(n, Path(tmp), round_))
    per_small = statistics.median(found[small]) * 1e3
    per_large = statistics.median(found[large]) * 1e3
    report.figure("per_run_small_ms", f"per resumed run, {small:,} waiting", per_small, "ms")
    report.figure("per_run_large_ms", f"per resumed run, {large:,} waiting", per_large, "ms")
    report.figure("total_large_s", f"all {large:,} resumed", per_large * large / 1e3, "s")
    ratio = per_large / per_small
    report.figure(
        "per_run_ratio", f"per-run cost {large:,} / {small:,}", ratio, "", "≤ 1.1", ratio <= 1.1
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
