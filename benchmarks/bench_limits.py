"""Shared limits: what reserving a rate slot or a budget in the shared store adds, against
the in-process counter (MemoryLimits: a deque and a lock, what every process counted in
before limits were shared), measured in the same run.

Per backend: one rate slot (`take_slot`), and one budget reservation settled after
(`reserve` + `settle`, two round trips, as the gate does around a costed call). SQLite
always; PostgreSQL when STEWARD_BENCH_POSTGRES_URL (or STEWARD_TEST_POSTGRES_URL) is set,
in a schema of its own dropped after; Redis when STEWARD_BENCH_REDIS_URL (or
STEWARD_TEST_REDIS_URL) is set, under a namespace of its own.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from _common import Measurement, Report, main, percentile, sample_async, scaled
from steward.store import Database
from steward.store.limits import Account, LimitStore, MemoryLimits, SqlLimits

PG_URL = os.environ.get("STEWARD_BENCH_POSTGRES_URL") or os.environ.get(
    "STEWARD_TEST_POSTGRES_URL", ""
)
REDIS_URL = os.environ.get("STEWARD_BENCH_REDIS_URL") or os.environ.get(
    "STEWARD_TEST_REDIS_URL", ""
)


@contextmanager
def postgres_schema(base: str) -> Iterator[Database]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    db = Database.open(f"{base}{separator}options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.close()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def operations(store: LimitStore) -> tuple[Callable[[int], Awaitable[object]], ...]:
    accounts = (Account("spend:run:bench", None), Account("spend:day:bench:1", 1e12))

    async def slot(_i: int) -> object:
        return await store.take_slot("rate:bench:tool", 10**9, 3600.0, time.time())

    async def budget(_i: int) -> object:
        reservation = await store.reserve(accounts, 0.01, time.time())
        await store.settle(reservation.hold, 0.005)
        return reservation

    return slot, budget


async def measure(report: Report, name: str, store: LimitStore, n: int, warm: int) -> None:
    slot, budget = operations(store)
    report.add(Measurement(f"{name}_slot", f"{name}: rate slot", await sample_async(slot, n, warm)))
    report.add(
        Measurement(
            f"{name}_budget",
            f"{name}: budget reserve + settle",
            await sample_async(budget, n, warm),
            unit="reservation",
        )
    )


def added(report: Report, backend: str) -> None:
    """The backend's latency minus the in-process counter's, at p50/p95/p99."""
    found = {m.key: sorted(m.samples_ns) for m in report.measurements}
    for kind in ("slot", "budget"):
        base, shared = found["memory_" + kind], found[f"{backend}_{kind}"]
        for pct in (50, 95, 99):
            extra = (percentile(shared, pct) - percentile(base, pct)) / 1000.0
            report.figure(
                f"{backend}_{kind}_added_p{pct}",
                f"{backend} {kind}: added latency p{pct}",
                extra,
                "µs",
            )


async def collect(quick: bool) -> Report:
    n = scaled(quick, 5_000, 300)
    n_memory = scaled(quick, 50_000, 5_000)
    warm = scaled(quick, 200, 20)
    report = Report(
        "limits",
        "Shared limits: reservation latency against the in-process counter",
        quick,
        params={"postgres": bool(PG_URL), "redis": bool(REDIS_URL)},
    )
    await measure(report, "memory", MemoryLimits(), n_memory, warm)
    backends = ["sqlite"]
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'limits.db'}")
        try:
            await measure(report, "sqlite", SqlLimits(db), n, warm)
        finally:
            db.close()
    if PG_URL:
        with postgres_schema(PG_URL) as pg:
            await measure(report, "postgres", SqlLimits(pg), n, warm)
        backends.append("postgres")
    if REDIS_URL:
        from steward.store.limits_redis import RedisLimits

        redis = RedisLimits(REDIS_URL, namespace=f"bench-{uuid.uuid4().hex}")
        await measure(report, "redis", redis, n, warm)
        backends.append("redis")
    for backend in backends:
        added(report, backend)
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
