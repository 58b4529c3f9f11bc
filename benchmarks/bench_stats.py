"""`steward stats` at fleet scale: a SQLite store with 1M runs (bulk-inserted into the real
schema, migrated to head: a realistic mix of outcomes, tool calls, denials, approvals,
costs and feedback over 28 days), and the stats of its agent over the whole window,
computed two ways in the same run:

- baseline: the aggregation as it was before migration 0014 (kept below, verbatim but for
  names: rows fetched into Python, the tool events' JSON decoded one by one);
- this tree: store/stats.py (SQL aggregation over covering indexes and call_facts).

Each sample is a fresh Python process (so each one's peak RSS is its own), old and new
alternated so both see the same machine load; medians of --repeat samples (default 3).
Wall and CPU time (user + system) are both shown: on a loaded machine the wall time grows
with the load, the CPU time much less.
The store is kept at /tmp/steward-bench-stats-N.db and reused (--fresh rebuilds it).
Target: this tree under 1 s at 1M runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGENT = "support-desk"
WINDOW = 28 * 86400
TARGET_S = 1.0
STATUSES = [("succeeded", 80), ("escalated", 8), ("failed", 3), ("rejected", 3), ("waiting", 2),
            ("cancelled", 1), ("running", 1), ("expired", 2)]  # fmt: skip
TOOLS = [("lookup_order", 60, 40.0), ("search_kb", 25, 120.0), ("issue_refund", 10, 300.0),
         ("send_email", 5, 80.0)]  # fmt: skip
RULES = ["refund-limit", "pii-egress", "scan.injection", "tenant-boundary", "rate.exceeded"]
TENANTS = ["acme", "globex", "initech", "umbrella", "hooli"]
WORDS = ["refund", "order", "shipping", "invoice", "password", "delivery", "damaged",
         "cancel", "subscription", "address", "late", "tracking", "warranty", "exchange"]  # fmt: skip


def _pick(rng: random.Random, weighted: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    total = sum(w[1] for w in weighted)
    roll = rng.uniform(0, total)
    for item in weighted:
        roll -= item[1]
        if roll <= 0:
            return item
    return weighted[-1]


def build(path: Path, n: int, now: float) -> None:
    """A store at head with `n` runs of AGENT (plus 5% of another agent)."""
    os.environ["STEWARD_TELEMETRY"] = "off"
    sys.path.insert(0, str(ROOT / "src"))
    from steward.store.database import Database

    Database.open(f"sqlite:///{path}").close()
    rng = random.Random(16)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    event_id = 0
    chunk: dict[str, list[tuple[Any, ...]]] = {k: [] for k in ("runs", "events", "facts",
                                                           "approvals", "costs")}  # fmt: skip
    sql = {
        "runs": "INSERT INTO runs (id, agent, agent_version, status, input, output, confidence,"
        " reason_code, reason, steps, tags, created_at, updated_at, finished_at, latency_ms)"
        " VALUES (?, ?, 'v1', ?, ?, ?, NULL, ?, '', ?, ?, ?, ?, ?, ?)",
        "events": "INSERT INTO events (id, run_id, type, ts, data, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, '', '')",
        "facts": "INSERT INTO call_facts (run_id, agent, run_created, kind, name, ts, value)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        "approvals": "INSERT INTO approvals (id, run_id, call_id, agent, tool, arguments,"
        " call_hash, status, reason, requested_at, expires_at, decided_at, decided_by, comment)"
        " VALUES (?, ?, 'c1', ?, 'issue_refund', '{}', '', ?, 'requires review', ?, ?, ?, ?, '')",
        "costs": "INSERT INTO cost_ledger (run_id, agent, tags, model, day, ts, input_tokens,"
        " output_tokens, cached_input_tokens, cost_usd, estimated) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0)",
    }

    def flush() -> None:
        for name, rows in chunk.items():
            db.executemany(sql[name], rows)
            rows.clear()

    total = n + n // 20
    for i in range(total):
        agent = AGENT if i < n else "billing-desk"
        run_id = f"run_{i:08d}"
        created = now - WINDOW + (i / total) * WINDOW + rng.random()
        status = _pick(rng, STATUSES)[0]
        words = " ".join(rng.choice(WORDS) for _ in range(6))
        text = f"Order #{10000 + rng.randrange(90000)}: {words}"
        finished = (
            None if status in {"waiting", "running"} else created + rng.lognormvariate(0.4, 0.6)
        )
        answer = "" if finished is None else f"Your order is on its way ({words.split()[0]})."
        tags = json.dumps({"tenant": rng.choice(TENANTS)})
        chunk["runs"].append((run_id, agent, status, text, answer,
                              "" if status == "succeeded" else status, 3, tags, created,
                              finished or created, finished,
                              None if finished is None else (finished - created) * 1000.0))  # fmt: skip
        for _call in range(rng.choice((0, 1, 1, 1, 2))):
            tool, _w, scale = _pick(rng, TOOLS)
            ts = created + 0.2
            latency = rng.lognormvariate(0, 0.5) * scale
            event_id += 1
            data = json.dumps({"attempts": 1, "cost_usd": 0.0, "key": f"k{event_id}",
                               "latency_ms": latency, "result": {"status": "shipped",
                               "order": text[6:12]}, "tool": tool, "type": "tool.succeeded"},
                              sort_keys=True)  # fmt: skip
            chunk["events"].append((event_id, run_id, "tool.succeeded", ts, data))
            chunk["facts"].append((run_id, agent, created, "tool", tool, ts, latency))
        if rng.random() < 0.04:
            event_id += 1
            rule = rng.choice(RULES)
            data = json.dumps({"decision": {"reasons": [{"code": "policy.deny", "message": "no"}],
                               "risk": 0.0, "rule_ids": [rule], "verdict": "deny"}, "key": "k",
                               "stage": "policy", "tool": "issue_refund", "type": "gate.decided"},
                              sort_keys=True)  # fmt: skip
            chunk["events"].append((event_id, run_id, "gate.decided", created + 0.1, data))
            chunk["facts"].append((run_id, agent, created, "deny", rule, created + 0.1, 0.0))
        if rng.random() < 0.06:
            decided = None if status == "waiting" else created + rng.uniform(30, 7200)
            state = (
                "pending" if decided is None else rng.choice(("approved", "approved", "rejected"))
            )
            chunk["approvals"].append((f"apr_{i:08d}", run_id, agent, state, created + 0.3,
                                       created + 86400, decided,
                                       None if decided is None else "reviewer"))  # fmt: skip
        if i % 997 == 0 and finished is not None:
            event_id += 1
            verdict = "incorrect" if rng.random() < 0.05 else "correct"
            data = json.dumps({"by": "qa", "comment": "", "correction": "x" if verdict ==
                               "incorrect" else "", "type": "run.feedback", "verdict": verdict})  # fmt: skip
            chunk["events"].append((event_id, run_id, "run.feedback", finished + 60, data))
        for _call in range(rng.choice((1, 1, 2))):
            tokens_in, tokens_out = rng.randrange(200, 2000), rng.randrange(20, 400)
            cost = tokens_in * 3e-6 + tokens_out * 15e-6
            chunk["costs"].append((run_id, agent, tags, "claude-haiku", int(created // 86400),
                                   created + 0.1, tokens_in, tokens_out, cost))  # fmt: skip
        if i % 20000 == 0:
            flush()
    flush()
    # what the projections keep with each event: approvals asked per run, the ledger by day
    db.execute(
        "UPDATE runs SET asked = (SELECT count(*) FROM approvals"
        " WHERE approvals.run_id = runs.id) WHERE id IN (SELECT run_id FROM approvals)"
    )
    db.execute("INSERT INTO cost_days (agent, day, model, tags, calls, input_tokens,"
               " output_tokens, cost_usd, estimated) SELECT agent, day, model, tags, count(*),"
               " sum(input_tokens), sum(output_tokens), sum(cost_usd), 0 FROM cost_ledger"
               " GROUP BY agent, day, model, tags")  # fmt: skip
    db.execute("UPDATE chain_head SET last_id = ?", (event_id,))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


# -- the baseline: agent_stats as it was before migration 0014 (names kept) ----------------


def old_agent_stats(db: Any, agent: str, window_seconds: float, now: float) -> dict[str, Any]:
    from sqlalchemy import select

    from steward.store.costs import cost_report
    from steward.store.feedback import accuracy, latest_verdicts
    from steward.store.schema import approvals, events, runs

    since = now - window_seconds
    statuses: dict[str, int] = {}
    run_latency_ms: list[float] = []
    tool_latency_ms: dict[str, list[float]] = {}
    run_query = select(runs.c.id, runs.c.status, runs.c.created_at, runs.c.finished_at).where(
        runs.c.agent == agent, runs.c.created_at >= since
    )
    with db.reader.connect() as connection:
        run_ids: list[str] = []
        for run_id, status, created, finished in connection.execute(run_query):
            run_ids.append(run_id)
            statuses[status] = statuses.get(status, 0) + 1
            if finished is not None:
                run_latency_ms.append((finished - created) * 1000)
        people = select(approvals.c.run_id).where(
            approvals.c.agent == agent, approvals.c.requested_at >= since
        )
        asked = {row[0] for row in connection.execute(people)}
        done = select(runs.c.id).where(
            runs.c.agent == agent, runs.c.created_at >= since, runs.c.status == "succeeded"
        )
        with_person = sum(1 for row in connection.execute(done) if row[0] in asked)
        wanted = set(run_ids)
        for data, run_id in connection.execute(select(events.c.data, events.c.run_id).where(
            events.c.type == "tool.succeeded", events.c.ts >= since
        )):  # fmt: skip
            if run_id in wanted:
                body = json.loads(data)
                tool_latency_ms.setdefault(body["tool"], []).append(float(body["latency_ms"]))
    verdicts = latest_verdicts(db, run_ids)
    per = cost_report(db, days=max(1, int(window_seconds // 86400) + 1), agent=agent,
                      now=now).per_transaction(agent)  # fmt: skip
    return {"statuses": statuses, "run_n": len(run_latency_ms), "with_person": with_person,
            "tools": {t: len(v) for t, v in tool_latency_ms.items()}, "judged": len(verdicts),
            "accuracy": accuracy(verdicts, statuses.get("succeeded", 0)),
            "cost_per_transaction": per}  # fmt: skip


def child(path: str, which: str, now: float) -> None:
    """One sample in this process: wall time and peak RSS above the start-up's."""
    os.environ["STEWARD_TELEMETRY"] = "off"
    sys.path.insert(0, str(ROOT / "src"))
    from steward.store.database import Database
    from steward.store.stats import agent_stats

    db = Database.open(f"sqlite:///{path}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter_ns()
    if which == "old":
        found = old_agent_stats(db, AGENT, WINDOW + 1, now)
    else:
        stats = agent_stats(db, AGENT, WINDOW + 1, now)
        found = {"statuses": stats.statuses, "run_n": stats.run_latency.n,
                 "with_person": stats.with_person,
                 "tools": {t: v.n for t, v in stats.tool_latency.items()},
                 "judged": stats.judged, "accuracy": stats.accuracy,
                 "cost_per_transaction": stats.cost_per_transaction}  # fmt: skip
    took = time.perf_counter_ns() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime - cpu
    print(json.dumps({"ns": took, "cpu_s": used, "rss_kb": usage.ru_maxrss, "rss_base_kb": before,
                      "found": found}))  # fmt: skip


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50k runs, 3 samples")
    parser.add_argument("--fresh", action="store_true", help="rebuild the store")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return 0
    n = 50_000 if args.quick else args.runs
    path = Path(f"/tmp/steward-bench-stats-{n}.db")
    meta = path.with_suffix(".json")
    if args.fresh or not path.exists() or not meta.exists():
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        started = time.time()
        build(path, n, started)
        meta.write_text(json.dumps({"now": started, "build_s": time.time() - started}))
    info = json.loads(meta.read_text())
    samples: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for _ in range(args.repeat):
        for which in ("old", "new"):  # alternated: both see the same load
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), which, str(info["now"] + 60)],
                check=True, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            samples[which].append(json.loads(out.stdout))
    old, new = samples["old"][0]["found"], samples["new"][0]["found"]
    agree = all(old[k] == new[k] for k in ("statuses", "run_n", "with_person", "tools", "judged"))
    agree = (
        agree
        and abs((old["cost_per_transaction"] or 0) - (new["cost_per_transaction"] or 0)) < 1e-9
    )
    result: dict[str, Any] = {"benchmark": "stats", "runs": n, "store_mb": path.stat().st_size / 1e6,
                              "build_s": info["build_s"], "repeat": args.repeat,
                              "figures_agree": agree}  # fmt: skip
    for which, label in (("old", "baseline (before 0014)"), ("new", "this tree")):
        rows = samples[which]
        result[which] = {
            "label": label,
            "wall_s_median": _median([r["ns"] / 1e9 for r in rows]),
            "wall_s": [round(r["ns"] / 1e9, 3) for r in rows],
            "cpu_s_median": _median([r["cpu_s"] for r in rows]),
            "peak_rss_mb_median": _median([r["rss_kb"] / 1024 for r in rows]),
            "rss_growth_mb_median": _median(
                [(r["rss_kb"] - r["rss_base_kb"]) / 1024 for r in rows]
            ),
        }
    result["speedup"] = result["old"]["wall_s_median"] / result["new"]["wall_s_median"]
    result["target_met"] = result["new"]["wall_s_median"] < TARGET_S
    path.with_suffix(".result.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"stats of {AGENT} over 28 days, {n:,} runs ({result['store_mb']:.0f} MB store, "
            f"built in {info['build_s']:.0f} s); medians of {args.repeat}, fresh process each"
        )
        for which in ("old", "new"):
            r = result[which]
            print(
                f"  {r['label']:<24} wall {r['wall_s_median']:7.3f} s {r['wall_s']}  "
                f"CPU {r['cpu_s_median']:7.3f} s  peak RSS {r['peak_rss_mb_median']:6.1f} MB "
                f"(+{r['rss_growth_mb_median']:.1f} MB while computing)"
            )
        print(
            f"  speed-up {result['speedup']:.1f}x; target < {TARGET_S:.0f} s: "
            f"{'met' if result['target_met'] else 'MISSED'}; figures agree: {agree}"
        )
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
