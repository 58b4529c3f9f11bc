"""Replica soak: several `steward serve` replicas over one PostgreSQL database under load,
one of them killed with SIGKILL at random moments and started again, then the counts an
operator would take (as benchmarks/crash_soak.py does for one server): runs acknowledged,
lost, stranded, side effects duplicated (refunds beyond one per run in the demo systems,
and calls with two recorded results in the journal), approved refunds missing, and
whether the audit chain verifies. Targets: 0 lost, 0 duplicated, chain verified.

Clients start runs and decide approvals on any live replica (a run started on one is
often approved on another, and resumed there). A replica that starts recovers the runs
a killed one left (its lease died with it: store/leases.py) and leaves alone the runs
the live replicas drive.

    STEWARD_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/replica_soak.py \
        --replicas 3 --kills 20

Off by default in `make test`; bounded in time (`--max-seconds`, each wait has a timeout).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crash_soak import TICKETS, Figures, Load, _count, _database, _settle
from steward.security.keys import Role
from steward.store.keys import create_key
from steward.testing.served import HOLD_ENV, ServedProcess, Zygote, crash_desk_spec


@dataclass
class ReplicaFigures:
    replicas: int
    kills: int = 0
    restarts: int = 0
    answered_by: dict[str, int] = field(default_factory=dict)  # 202s and 200s per replica
    decided_elsewhere: int = 0  # decisions taken on another replica than the run's start
    totals: Figures = field(default_factory=lambda: Figures("postgres"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop killing")
    parser.add_argument("--quick", action="store_true", help="4 kills: a smoke test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kills = 4 if args.quick else args.kills
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="steward-replicas-") as tmp,
        _database("postgres", Path(tmp)) as db,
    ):
        started = time.monotonic()
        spec = Path(tmp) / "desk.yaml"
        spec.write_text(crash_desk_spec(max_concurrent_runs=2))
        zygote = Zygote()
        systems = Path(tmp) / "systems.db"
        servers = [
            ServedProcess(db.url, spec, systems, Path(tmp) / f"serve-{n}.log", zygote=zygote)
            for n in range(args.replicas)
        ]
        admin = create_key(db, name="ops", role=Role.ADMIN, by="soak")[1]
        reviewer = create_key(db, name="ana", role=Role.REVIEWER, by="soak")[1]
        figures, load = ReplicaFigures(args.replicas), Load()
        env = {HOLD_ENV: str(Path(tmp) / "no-hold")}
        try:
            for server in servers:
                server.start(**env)
            _soak(servers, admin, reviewer, load, figures, rng, kills, args.max_seconds, env)
            for server in servers:  # every replica up for the final recovery
                if not server.alive():
                    server.start(**env)
            _settle(db, timeout=120.0)
        finally:
            for server in servers:
                server.kill()
            zygote.close()
        _count(db, systems, load, figures.totals)
        figures.totals.kills = figures.kills
        figures.totals.cycles = figures.restarts
        figures.totals.seconds = round(time.monotonic() - started, 1)
    totals = figures.totals
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        for name, value in asdict(figures).items():
            if name != "totals":
                print(f"{name:>26}: {value}")
        for name, value in asdict(totals).items():
            print(f"{name:>26}: {value}")
    ok = totals.chain_verified and 0 == totals.lost == totals.stranded == totals.duplicated
    ok = ok and totals.duplicated_in_journal == 0 and totals.approved_refunds_missing == 0
    return 0 if ok else 1


def _soak(
    servers: list[ServedProcess],
    admin: str,
    reviewer: str,
    load: Load,
    figures: ReplicaFigures,
    rng: random.Random,
    kills: int,
    max_seconds: float,
    env: dict[str, str],
) -> None:
    """Load from four threads while the main thread kills a random replica every
    0.3-1.5 s and starts it again at once."""
    stop = threading.Event()
    texts = [t for t, weight in TICKETS for _ in range(weight)]
    started_on: dict[str, int] = {}
    seeds = [rng.random() for _ in range(4)]
    started = time.monotonic()

    def live(mine: random.Random) -> tuple[int, ServedProcess]:
        index = mine.randrange(len(servers))
        return index, servers[index]

    def answered(index: int) -> None:
        with load.lock:
            key = f"replica-{index}"
            figures.answered_by[key] = figures.answered_by.get(key, 0) + 1

    def starter(seed: float) -> None:
        mine = random.Random(seed)
        while not stop.is_set():
            index, server = live(mine)
            body = {"agent": "support-desk", "input": mine.choice(texts)}
            try:
                status, answer = server.call("POST", "/v1/runs", admin, body, timeout=5)
            except OSError:
                time.sleep(0.05)  # that replica is down: try another
                continue
            if status == 202:
                answered(index)
                with load.lock:
                    load.acknowledged.add(answer["id"])
                    started_on[answer["id"]] = index

    def reviewer_loop(seed: float) -> None:
        mine = random.Random(seed)
        while not stop.is_set():
            index, server = live(mine)
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
                        answered(index)
                        with load.lock:
                            load.decisions += 1
                            if started_on.get(item["run_id"], index) != index:
                                figures.decided_elsewhere += 1
                            if answer[1]["status"] == "approved":
                                load.approved.add(item["id"])
            except OSError:
                time.sleep(0.05)
            time.sleep(0.02)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(starter, s) for s in seeds[:3]]
        futures.append(pool.submit(reviewer_loop, seeds[3]))
        try:
            for _ in range(kills):
                if time.monotonic() - started > max_seconds:
                    break
                time.sleep(rng.uniform(0.3, 1.5))
                victim = rng.choice(servers)
                victim.kill()
                figures.kills += 1
                victim.start(**env)  # it recovers what it left; the others' runs stay theirs
                figures.restarts += 1
            time.sleep(1.0)
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
