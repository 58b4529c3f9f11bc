"""Journal throughput: events/s of Journal.append + a final `await journal.flush()`, against
a raw sqlite3 floor in the same run (WAL, synchronous=NORMAL, explicit BEGIN/COMMIT,
pre-built rows, same table shape and batch size as the journal). Also the group-commit
case: 8 producer tasks each awaiting flush after every event. And the writer's check that
the SQLite file is still the one opened (a stat after a commit, at most every 50 ms), against
the latency of one commit.

SQLite against PostgreSQL, in the same run (PostgreSQL when STEWARD_BENCH_POSTGRES_URL or
STEWARD_TEST_POSTGRES_URL is set, in a scratch schema dropped after): group commit with 8
producers flushing each event (events/s), and a governed keyed write whose intent is made
durable before the call (p50, the whole gate on the embedded executor), the two backends
alternated three times; the medians are the figures.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from _common import Measurement, Report, main, sample_async, scaled
from bench_gate import build_gate, tool_calls
from steward.core.events import Event, ToolSucceeded, encode_event, event_type
from steward.engines.embedded import EmbeddedExecutor
from steward.store import Database, Journal
from steward.store.schema import GENESIS_HASH, events
from steward.testing import MemoryScope
from steward.testing.postgres import postgres_schema

PG_URL = os.environ.get("STEWARD_BENCH_POSTGRES_URL") or os.environ.get(
    "STEWARD_TEST_POSTGRES_URL", ""
)
ROUNDS = 3  # SQLite and PostgreSQL alternated this many times; medians reported
# agent-governance-toolkit's govern(), p50, as issue 15 measured it on this machine class
# (the toolkit is not installed here, so it is not re-measured in this run)
AGT_GOVERN_US = 64.0

PRODUCERS = 8
RUNS = 64  # events are spread over this many run ids, as in a busy process
INSERT = "INSERT INTO events (id, run_id, type, ts, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?)"


def make_events(count: int) -> list[tuple[str, Event]]:
    """Typical ToolSucceeded events: a small order record as the result."""
    out: list[tuple[str, Event]] = []
    for i in range(count):
        run_id = f"run_{i % RUNS:020d}"
        result: dict[str, Any] = {
            "order_id": f"A-{10_000 + i}",
            "status": "shipped",
            "items": [{"sku": "W-1", "name": "Blue widget", "qty": 2}],
            "total_usd": 59.9,
        }
        out.append((run_id, ToolSucceeded(f"{run_id}:{i}:call_0", "lookup_order", result, 1.25, 1)))
    return out


def floor_rows(
    items: list[tuple[str, Event]], first_id: int, prev: str
) -> tuple[list[tuple[Any, ...]], str]:
    """The rows the journal would write, built (and hashed) ahead of the timed insert."""
    rows: list[tuple[Any, ...]] = []
    ts = time.time()
    for offset, (run_id, event) in enumerate(items):
        row_id = first_id + offset
        data = encode_event(event)
        kind = event_type(event)
        digest = hashlib.sha256(
            b"%s|%d|%s|%s|%r|%s" % (prev.encode(), row_id, run_id.encode(), kind.encode(), ts, data)
        ).hexdigest()
        rows.append((row_id, run_id, kind, ts, data.decode(), prev, digest))
        prev = digest
    return rows, prev


def open_floor(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    dialect = sqlite_dialect.dialect()
    connection.execute(str(CreateTable(events).compile(dialect=dialect)))
    for index in events.indexes:
        connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
    return connection


def insert_floor(connection: sqlite3.Connection, rows: list[tuple[Any, ...]], batch: int) -> None:
    for start in range(0, len(rows), batch):
        connection.execute("BEGIN")
        connection.executemany(INSERT, rows[start : start + batch])
        connection.execute("COMMIT")


async def bulk(journal: Journal, items: list[tuple[str, Event]]) -> int:
    """Append everything, then one flush; returns elapsed ns."""
    start = time.perf_counter_ns()
    append = journal.append
    for run_id, event in items:
        append(run_id, event)
    await journal.flush()
    return time.perf_counter_ns() - start


async def flush_each(
    journal: Journal, items: list[tuple[str, Event]], producers: int
) -> tuple[list[int], int]:
    """`producers` tasks, each appending its share and awaiting flush after every event.
    Returns the per-event latencies (append + flush) and the wall time, both in ns."""
    clock = time.perf_counter_ns
    latencies: list[int] = []

    async def producer(share: list[tuple[str, Event]]) -> None:
        for run_id, event in share:
            start = clock()
            journal.append(run_id, event)
            await journal.flush()
            latencies.append(clock() - start)

    shares = [items[p::producers] for p in range(producers)]
    gc.collect()
    started = clock()
    await asyncio.gather(*(producer(share) for share in shares))
    return latencies, clock() - started


@contextmanager
def backend(name: str, tmp: Path, round_: int) -> Iterator[Database]:
    """A fresh database: a SQLite file, or a scratch PostgreSQL schema."""
    if name.startswith("sqlite"):
        # "sqlite-full": synchronous=FULL, every commit waits for the WAL's fsync, so a
        # commit survives power loss, as PostgreSQL's (synchronous_commit on) does; steward's
        # default, NORMAL, survives a process crash and fsyncs only at checkpoints
        synchronous = "FULL" if name == "sqlite-full" else "NORMAL"
        db = Database.open(f"sqlite:///{tmp / f'{name}-{round_}.db'}", synchronous=synchronous)
        try:
            yield db
        finally:
            db.close()
        return
    with postgres_schema(PG_URL, "bench") as url:
        db = Database.open(url)
        try:
            yield db
        finally:
            db.close()


def commit_floor(db: Database, n: int) -> float:
    """p50 µs of the smallest durable write through the raw driver: one single-row INSERT
    committed (SQLite: BEGIN IMMEDIATE; PostgreSQL: autocommit, so one round trip and
    the server's WAL flush)."""
    connection = db.writer.raw_connection()
    try:
        raw: Any = connection.dbapi_connection
        cursor = raw.cursor()
        cursor.execute("CREATE TABLE bench_floor (x INTEGER)")
        raw.commit()
        sqlite = db.dialect == "sqlite"
        if not sqlite:
            raw.autocommit = True
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("INSERT INTO bench_floor VALUES (1)")
            if sqlite:
                raw.commit()
            samples.append(time.perf_counter_ns() - start)
        if not sqlite:
            raw.autocommit = False
        cursor.execute("DROP TABLE bench_floor")
        raw.commit()
    finally:
        connection.close()
    return statistics.median(samples) / 1000


async def backend_round(
    db: Database, quick: bool, commit_here: bool = True, one_statement: bool = True
) -> tuple[float, float, float, float]:
    """(events/s with 8 producers flushing each event, keyed write p50 µs, journal commit
    p50 µs with 1 producer, raw driver commit p50 µs) on a fresh journal over `db`."""
    n_group = scaled(quick, 4_000, 800)
    n_write = scaled(quick, 2_000, 300)
    floor = commit_floor(db, scaled(quick, 500, 100))
    journal = Journal(db, commit_here=commit_here, one_statement=one_statement)
    try:
        group_items = make_events(n_group)
        await flush_each(journal, group_items[: PRODUCERS * 20], PRODUCERS)
        _, wall = await flush_each(journal, group_items, PRODUCERS)
        rate = n_group * 1e9 / wall
        single, _ = await flush_each(journal, make_events(n_write // 2), 1)
        gate = build_gate()
        policy = gate.policy
        writer = EmbeddedExecutor(db, journal, "run_write", policy.agent, policy.version)
        warm = 100
        calls = tool_calls("put", warm + n_write, "w")
        samples = await sample_async(lambda i: gate.process(writer, calls[i], i), n_write, warm)
        await journal.flush()
        if journal.stats.last_error:
            raise RuntimeError(f"journal failed: {journal.stats.last_error}")
    finally:
        journal.close()
    return rate, statistics.median(samples) / 1000, statistics.median(single) / 1000, floor


async def gate_only_keyed_write(quick: bool) -> float:
    """p50 µs of the same governed keyed write against an in-memory scope: the gate's own
    work, without encoding, hashing or a commit (the floor under the journal's figure)."""
    n_write = scaled(quick, 2_000, 300)
    gate = build_gate()
    policy = gate.policy
    scope = MemoryScope("run_write", policy.agent, policy.version)
    warm = 100
    calls = tool_calls("put", warm + n_write, "w")
    samples = await sample_async(lambda i: gate.process(scope, calls[i], i), n_write, warm)
    return statistics.median(samples) / 1000


async def compare_backends(report: Report, quick: bool) -> None:
    # "sqlite-writer": every commit on the writer thread, as before a flush could commit
    # on its caller's thread; "postgresql-generic": a batch in several round trips (head
    # read FOR UPDATE, rows, head, commit), as before one statement: the same-run baselines
    # "sqlite-full": SQLite at PostgreSQL's durability (an fsync per commit), for the
    # comparison at equal durability
    names = ["sqlite", "sqlite-writer", "sqlite-full"]
    if PG_URL:
        names += ["postgresql", "postgresql-generic"]
    found: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    gate_only: list[float] = []
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        for round_ in range(ROUNDS):
            gate_only.append(await gate_only_keyed_write(quick))
            for name in names if round_ % 2 == 0 else names[::-1]:
                with backend(name, Path(tmp), round_) as db:
                    found[name].append(
                        await backend_round(
                            db,
                            quick,
                            commit_here=name != "sqlite-writer",
                            one_statement=name != "postgresql-generic",
                        )
                    )
    medians = {
        name: tuple(statistics.median(r[k] for r in rounds) for k in range(4))
        for name, rounds in found.items()
    }
    for name, (rate, write, commit, floor) in medians.items():
        key = name.replace("-", "_")
        report.figure(
            f"{key}_group_events_per_s",
            f"{name}: {PRODUCERS} producers flushing each event (median of {ROUNDS})",
            rate,
            "events/s",
        )
        report.figure(
            f"{key}_keyed_write_p50",
            f"{name}: governed keyed write, intent durable first, p50 (median of {ROUNDS})",
            write,
            "µs",
        )
        report.figure(
            f"{key}_commit_p50",
            f"{name}: 1 producer, append + flush, p50 (median of {ROUNDS})",
            commit,
            "µs",
        )
        report.figure(
            f"{key}_floor_p50",
            f"{name}: raw driver, one-row INSERT committed, p50 (median of {ROUNDS})",
            floor,
            "µs",
        )
    report.figure(
        "gate_only_keyed_write_p50",
        f"the same keyed write, in-memory scope: the gate alone, p50 (median of {ROUNDS})",
        statistics.median(gate_only),
        "µs",
    )
    here, writer = medians["sqlite"], medians["sqlite-writer"]
    report.figure(
        "sqlite_group_vs_writer",
        "SQLite group commit events/s, commit on the caller's path / writer thread only",
        here[0] / writer[0],
        "",
        "≥ 1 (throughput not lowered)",
        here[0] / writer[0] >= 0.95,
    )
    report.figure(
        "sqlite_keyed_write_vs_agt",
        "SQLite keyed write p50 vs AGT govern() 64 µs (issue 15's same-machine figure)",
        here[1] / AGT_GOVERN_US,
        "x",
        "≤ 1",
        here[1] <= AGT_GOVERN_US,
    )
    if "postgresql" in medians:
        pg, generic = medians["postgresql"], medians["postgresql-generic"]
        report.figure(
            "pg_group_vs_generic",
            "PostgreSQL group commit events/s, one statement / several round trips",
            pg[0] / generic[0],
        )
        report.figure(
            "pg_commit_vs_generic",
            "PostgreSQL 1-producer commit p50, one statement / several round trips",
            pg[2] / generic[2],
        )
        report.figure(
            "pg_commit_vs_floor",
            "PostgreSQL 1-producer commit p50 / raw driver INSERT+COMMIT p50 (the WAL flush)",
            pg[2] / pg[3],
        )
        rate_ratio = medians["postgresql"][0] / medians["sqlite"][0]
        write_ratio = medians["postgresql"][1] / medians["sqlite"][1]
        report.figure(
            "pg_sqlite_group_ratio",
            "group commit events/s, PostgreSQL / SQLite",
            rate_ratio,
            "",
            "≥ 0.50",
            rate_ratio >= 0.5,
        )
        report.figure(
            "pg_sqlite_keyed_write_ratio",
            "keyed write p50, PostgreSQL / SQLite",
            write_ratio,
            "",
            "≤ 2",
            write_ratio <= 2.0,
        )
        # The floor under the last two: one durable PostgreSQL commit through the raw
        # driver (a loopback round trip and the WAL flush) against steward's whole keyed
        # write on SQLite, whose default commit does not fsync
        report.figure(
            "pg_floor_vs_sqlite_keyed_write",
            "PostgreSQL raw INSERT+COMMIT p50 / SQLite's whole keyed write p50",
            medians["postgresql"][3] / medians["sqlite"][1],
        )
        full = medians["sqlite-full"]
        report.figure(
            "pg_sqlite_full_group_ratio",
            "group commit events/s, PostgreSQL / SQLite synchronous=FULL (equal durability)",
            medians["postgresql"][0] / full[0],
        )
        report.figure(
            "pg_sqlite_full_keyed_write_ratio",
            "keyed write p50, PostgreSQL / SQLite synchronous=FULL (equal durability)",
            medians["postgresql"][1] / full[1],
        )


async def collect(quick: bool) -> Report:
    n_events = scaled(quick, 20_000, 4_000)
    reps = scaled(quick, 7, 3)
    n_group = scaled(quick, 4_000, 800)
    n_single = scaled(quick, 1_000, 200)

    items = make_events(n_events)
    group_items = make_events(n_group)
    single_items = make_events(n_single)
    report = Report(
        "journal",
        "Journal throughput vs raw SQLite floor",
        quick,
        params={"events_per_rep": n_events, "reps": reps, "producers": PRODUCERS},
    )

    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'journal.db'}")
        journal = Journal(db)
        batch = journal.max_batch
        report.params["max_batch"] = batch
        connection = open_floor(Path(tmp) / "floor.db")
        stats = journal.stats
        try:
            # -- append N + flush, and the floor, interleaved rep by rep so both see the
            # same disk and a table of the same size --------------------------------
            next_id, prev = 1, GENESIS_HASH
            bulk_ns: list[int] = []
            floor_ns: list[int] = []
            commits0 = events0 = 0
            for rep in range(reps + 1):  # rep 0 is the warm-up
                if rep == 1:
                    commits0, events0 = stats.commits, stats.events
                rows, prev = floor_rows(items, next_id, prev)
                next_id += len(rows)
                gc.collect()
                elapsed = await bulk(journal, items)
                gc.collect()
                start = time.perf_counter_ns()
                insert_floor(connection, rows, batch)
                floor_elapsed = time.perf_counter_ns() - start
                if rep:
                    bulk_ns.append(elapsed)
                    floor_ns.append(floor_elapsed)
            bulk_batch = (stats.events - events0) / max(1, stats.commits - commits0)
            journal_bulk = report.add(
                Measurement(
                    "journal_bulk",
                    f"journal: append x{n_events:,} + flush",
                    bulk_ns,
                    per_sample=n_events,
                    unit="event",
                    note=f"mean batch {bulk_batch:,.0f}",
                )
            )
            floor = report.add(
                Measurement(
                    "sqlite_floor",
                    f"floor: raw sqlite3 x{n_events:,}",
                    floor_ns,
                    per_sample=n_events,
                    unit="event",
                    note=f"BEGIN/COMMIT per {batch} rows",
                )
            )

            # -- one producer, flush after every event: the latency of one commit ------
            await flush_each(journal, single_items[:50], 1)
            commits0, events0 = stats.commits, stats.events
            single_lat, single_wall = await flush_each(journal, single_items, 1)
            single_batch = (stats.events - events0) / max(1, stats.commits - commits0)
            single = report.add(
                Measurement(
                    "journal_flush_each_1",
                    "journal: 1 producer, flush per event",
                    single_lat,
                    unit="event",
                    note=f"batch {single_batch:,.1f}; µs = commit latency",
                    wall_ns=single_wall,
                )
            )

            # -- 8 producers, flush after every event: group commit --------------------
            await flush_each(journal, group_items[: PRODUCERS * 20], PRODUCERS)
            commits0, events0 = stats.commits, stats.events
            group_lat, group_wall = await flush_each(journal, group_items, PRODUCERS)
            group_batch = (stats.events - events0) / max(1, stats.commits - commits0)
            group = report.add(
                Measurement(
                    "journal_flush_each_8",
                    f"journal: {PRODUCERS} producers, flush per event",
                    group_lat,
                    unit="event",
                    note=f"batch {group_batch:,.1f}; µs = append→durable",
                    wall_ns=group_wall,
                )
            )
            # -- the writer's identity check (a stat, at most every 50 ms) -----------------
            clock = time.perf_counter_ns
            check_ns: list[int] = []
            for _ in range(scaled(quick, 20_000, 2_000)):
                start = clock()
                db.identity_problem()
                check_ns.append(clock() - start)
            identity = report.add(
                Measurement(
                    "identity_check",
                    "identity check (stat of the database file)",
                    check_ns,
                    unit="check",
                    note="at most 1 per 50 ms",
                )
            )
            if stats.last_error:
                raise RuntimeError(f"journal failed: {stats.last_error}")
        finally:
            connection.close()
            journal.close()
            db.close()

    journal_rate = journal_bulk.figures()["throughput_per_s"]
    floor_rate = floor.figures()["throughput_per_s"]
    ratio = journal_rate / floor_rate
    report.figure("journal_events_per_s", "journal (append + flush)", journal_rate, "events/s")
    report.figure("floor_events_per_s", "floor (raw sqlite3)", floor_rate, "events/s")
    report.figure("ratio_journal_floor", "ratio journal / floor", ratio, "", "≥ 0.50", ratio >= 0.5)
    report.figure(
        "group_events_per_s",
        f"group commit, {PRODUCERS} producers flushing each event",
        group.figures()["throughput_per_s"],
        "events/s",
    )
    report.figure("group_mean_batch", "group commit mean batch size", group_batch, "events")
    report.figure("single_mean_batch", "1 producer mean batch size", single_batch, "events")
    share = identity.figures()["p50_us"] / single.figures()["p50_us"]
    report.figure(
        "identity_share_of_commit",
        "one identity check / one commit's latency (p50; ≤ 1 check per 50 ms)",
        100 * share,
        "%",
        "≤ 5 %",
        share <= 0.05,
    )
    await compare_backends(report, quick)
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
