"""Crash soak: kill `steward serve` with SIGKILL at random moments under load, restart it,
and count what an operator would: runs acknowledged (202s received), lost (acknowledged,
not in the store), stranded (not finished and not waiting on a pending approval after
the final recovery), duplicated side effects (refunds beyond one per run in the demo
systems, and calls with two recorded results in the journal), and whether the audit
chain verifies. `keyed_retries` counts refunds handed to their tool again after a crash
between the intent and the result: by design (the systems deduplicate the key), not a
duplicate.

Each cycle starts the server over the same database, drives load for a random while
(runs started from several threads: refunds a person must approve, small refunds the
agent may issue, order questions; a reviewer approves or rejects pending requests through
the API, and leaves some pending), then kills the server at a random moment. A last
start recovers everything; the figures are read from the store and the demo systems.

    python benchmarks/crash_soak.py --cycles 50 --store sqlite
    python benchmarks/crash_soak.py --cycles 50 --store postgres   # $STEWARD_TEST_POSTGRES_URL

Off by default in `make test`; bounded in time (`--max-seconds`, each wait has a timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.recovery import resumable_runs
from steward.store.schema import approvals, events, runs
from steward.testing.postgres import postgres_schema
from steward.testing.served import (
    HOLD_ENV,
    ServedProcess,
    Zygote,
    chain_verifies,
    crash_desk_spec,
    refunds_by_run,
)

TICKETS = (
    ("Order #10114 arrived without the tent. Please refund $330 for it.", 4),  # reviewed
    ("Please refund $20 on order #10114, the strap broke.", 3),  # the agent's authority
    ("Where is my order #10114?", 2),
    ("Please refund $900 on order #10114.", 1),  # forbidden: denied
)
TERMINAL = {"succeeded", "failed", "escalated", "cancelled"}


@dataclass
class Figures:
    store: str
    cycles: int = 0
    kills: int = 0
    acknowledged: int = 0
    lost: int = 0
    stranded: int = 0
    duplicated: int = 0  # refunds beyond one per run, in the demo systems
    duplicated_in_journal: int = 0  # a call's key with two recorded results
    keyed_retries: int = 0  # refund calls handed to the tool again after a crash mid-call
    approved_refunds: int = 0
    approved_refunds_missing: int = 0
    chain_verified: bool = False
    decisions: int = 0
    queued_runs: int = 0  # runs that waited for a slot (a run.queued event)
    recovered_activations: int = 0  # resumptions by a restarted server's recovery
    waiting_on_pending: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Load:
    """What the clients were told: runs acknowledged, approvals decided."""

    acknowledged: set[str] = field(default_factory=set)
    approved: set[str] = field(default_factory=set)  # approval ids answered 200 "approved"
    decisions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop starting cycles")
    parser.add_argument("--quick", action="store_true", help="3 cycles: a smoke test")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--fresh", action="store_true",
        help="start each server in a new interpreter (slow) instead of forking a zygote",
    )  # fmt: skip
    args = parser.parse_args(argv)
    cycles = 3 if args.quick else args.cycles
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="steward-soak-") as tmp,
        _database(args.store, Path(tmp)) as db,
    ):
        figures = soak(db, Path(tmp), args.store, cycles, rng, args.max_seconds, args.fresh)
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        for name, value in asdict(figures).items():
            print(f"{name:>26}: {value}")
    ok = figures.chain_verified and 0 == figures.lost == figures.stranded == figures.duplicated
    ok = ok and figures.duplicated_in_journal == 0
    return 0 if ok and figures.approved_refunds_missing == 0 else 1


@contextmanager
def _database(store: str, tmp: Path) -> Iterator[Database]:
    if store == "sqlite":
        db = Database.open(f"sqlite:///{tmp / 'steward.db'}")
        try:
            yield db
        finally:
            db.close()
        return
    base = os.environ.get("STEWARD_TEST_POSTGRES_URL", "")
    if not base:
        raise SystemExit("--store postgres needs STEWARD_TEST_POSTGRES_URL")
    with postgres_schema(base, "soak") as url:
        db = Database.open(url)
        try:
            yield db
        finally:
            db.close()


def soak(
    db: Database,
    tmp: Path,
    store: str,
    cycles: int,
    rng: random.Random,
    max_seconds: float,
    fresh: bool = False,
) -> Figures:
    started = time.monotonic()
    spec = tmp / "desk.yaml"
    spec.write_text(crash_desk_spec(max_concurrent_runs=2))
    zygote = None if fresh else Zygote()
    server = ServedProcess(db.url, spec, tmp / "systems.db", tmp / "serve.log", zygote=zygote)
    admin = create_key(db, name="ops", role=Role.ADMIN, by="soak")[1]
    reviewer = create_key(db, name="ana", role=Role.REVIEWER, by="soak")[1]
    figures, load = Figures(store), Load()
    try:
        for _ in range(cycles):
            if time.monotonic() - started > max_seconds:
                break
            server.start(**{HOLD_ENV: str(tmp / "no-hold")})
            _drive(server, admin, reviewer, load, rng, seconds=rng.uniform(0.3, 1.5))
            server.kill()
            figures.cycles += 1
            figures.kills += 1
        server.start(**{HOLD_ENV: str(tmp / "no-hold")})  # the final recovery
        _settle(db, timeout=120.0)
    finally:
        server.kill()
        if zygote is not None:
            zygote.close()
    _count(db, server.systems, load, figures)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def _drive(
    server: ServedProcess,
    admin: str,
    reviewer: str,
    load: Load,
    rng: random.Random,
    seconds: float,
) -> None:
    """Start runs from three threads and decide approvals from a fourth until `seconds`
    have passed; then return, leaving requests in flight for the kill."""
    until = time.monotonic() + seconds
    texts = [t for t, weight in TICKETS for _ in range(weight)]
    seeds = [rng.random() for _ in range(4)]

    def starter(seed: float) -> None:
        mine = random.Random(seed)
        while time.monotonic() < until:
            body = {"agent": "support-desk", "input": mine.choice(texts)}
            try:
                status, answer = server.call("POST", "/v1/runs", admin, body, timeout=5)
            except OSError:
                return
            if status == 202:
                with load.lock:
                    load.acknowledged.add(answer["id"])

    def reviewer_loop(seed: float) -> None:
        mine = random.Random(seed)
        while time.monotonic() < until:
            try:
                status, pending = server.call("GET", "/v1/approvals", admin, timeout=5)
                for item in pending if status == 200 else []:
                    roll = mine.random()
                    if roll < 0.1:
                        continue  # left pending: its run legitimately waits
                    decision = "approve" if roll < 0.9 else "reject"
                    path = f"/v1/approvals/{item['id']}/decision"
                    answer = server.call("POST", path, reviewer, {"decision": decision}, timeout=5)
                    if answer[0] == 200:
                        with load.lock:
                            load.decisions += 1
                            if answer[1]["status"] == "approved":
                                load.approved.add(item["id"])
            except OSError:
                return
            time.sleep(0.02)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(starter, s) for s in seeds[:3]]
        futures.append(pool.submit(reviewer_loop, seeds[3]))
        time.sleep(seconds * rng.uniform(0.5, 1.0))  # the kill comes at a random moment
        server.kill()
        for future in futures:
            future.result(timeout=30)


def _settle(db: Database, timeout: float) -> None:
    """Wait until no run can make progress any more (all finished, or waiting on a
    pending approval), or `timeout`."""
    deadline = time.monotonic() + timeout
    while resumable_runs(db) and time.monotonic() < deadline:
        time.sleep(0.25)
    time.sleep(0.5)  # a resume in flight records its last events


def _count(db: Database, systems: Path, load: Load, figures: Figures) -> None:
    with db.reader.connect() as connection:
        rows = {r.id: r.status for r in connection.execute(select(runs.c.id, runs.c.status))}
        pending_runs = {
            r.run_id
            for r in connection.execute(
                select(approvals.c.run_id).where(approvals.c.status == "pending")
            )
        }
        approved = {
            r.id: r.run_id
            for r in connection.execute(
                select(approvals.c.id, approvals.c.run_id).where(approvals.c.status == "approved")
            )
        }
        queued = select(events.c.run_id).where(events.c.type == "run.queued")
        figures.queued_runs = len(connection.execute(queued).all())
        calls = select(events.c.type, events.c.data).where(
            events.c.type.in_(["tool.started", "tool.succeeded"])
        )
        started, succeeded = Counter[str](), Counter[str]()
        for type_, data in connection.execute(calls):
            call = json.loads(data)
            if call["tool"] == "issue_refund":
                (started if type_ == "tool.started" else succeeded)[call["key"]] += 1
        figures.duplicated_in_journal = sum(n - 1 for n in succeeded.values() if n > 1)
        figures.keyed_retries = sum(n - 1 for n in started.values() if n > 1)
        resumed = select(events.c.data).where(events.c.type == "run.resumed")
        figures.recovered_activations = sum(
            "recovered after a server restart" in str(data)
            for (data,) in connection.execute(resumed)
        )
    refunds = refunds_by_run(systems)
    figures.acknowledged = len(load.acknowledged)
    figures.decisions = load.decisions
    figures.lost = sum(run_id not in rows for run_id in load.acknowledged)
    waiting_on_pending = {r for r, s in rows.items() if s == "waiting" and r in pending_runs}
    figures.waiting_on_pending = len(waiting_on_pending)
    figures.stranded = sum(
        s not in TERMINAL and r not in waiting_on_pending for r, s in rows.items()
    )
    figures.duplicated = sum(n - 1 for n in refunds.values() if n > 1)
    figures.approved_refunds = len(load.approved)
    # every approval the API said was approved led to its refund, exactly once
    figures.approved_refunds_missing = sum(
        refunds[approved[a]] != 1 for a in load.approved if a in approved
    ) + sum(a not in approved for a in load.approved)
    figures.statuses = dict(Counter(rows.values()))
    figures.chain_verified = chain_verifies(db)


if __name__ == "__main__":
    sys.exit(main())
