"""The limit stores (store/limits.py): exact counts under concurrency, settlement, and
what a reservation left unsettled by a crash does, on every backend."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from conftest import NamedPostgres
from steward.store import Database
from steward.store.limits import (
    REDIS_ENV,
    Account,
    LimitStore,
    MemoryLimits,
    SqlLimits,
    limit_store,
)
from steward.store.schema import limit_totals, limit_usage

REDIS_URL = os.environ.get("STEWARD_TEST_REDIS_URL", "")


def _redis_store() -> LimitStore:
    if not REDIS_URL:
        if os.environ.get("CI"):
            pytest.fail("STEWARD_TEST_REDIS_URL is not set, and CI must run the Redis tests")
        pytest.skip("Redis tests skipped: set STEWARD_TEST_REDIS_URL to run them")
    from steward.store.limits_redis import RedisLimits

    return RedisLimits(REDIS_URL, namespace=f"test-{uuid.uuid4().hex}")


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest) -> LimitStore:
    if request.param == "memory":
        return MemoryLimits()
    if request.param == "redis":
        return _redis_store()
    db: Database = request.getfixturevalue(f"{request.param}_db")
    return SqlLimits(db)


async def test_a_window_counts_exactly_under_concurrency(store: LimitStore) -> None:
    now = time.time()
    used = await asyncio.gather(*(store.take_slot("rate:a:t", 20, 3600, now) for _ in range(60)))
    assert sorted(used) == [*range(20), *([20] * 40)]


async def test_a_window_slides(store: LimitStore) -> None:
    now = time.time()
    assert await store.take_slot("rate:a:t", 1, 10, now - 20) == 0
    assert await store.take_slot("rate:a:t", 1, 10, now) == 0  # the first slot left the window
    assert await store.take_slot("rate:a:t", 1, 10, now + 1) == 1


async def test_reservations_never_overshoot_and_settle_releases(store: LimitStore) -> None:
    accounts: Sequence[Account] = (Account("spend:run:r", None), Account("spend:day:a:1", 10.0))
    now = time.time()
    results = await asyncio.gather(*(store.reserve(accounts, 1.0, now) for _ in range(30)))
    granted = [r for r in results if r.granted]
    assert len(granted) == 10
    assert await store.total("spend:day:a:1") == pytest.approx(10.0)
    await store.settle(granted[0].hold, 0.0)  # the call did not happen: released
    await store.settle(granted[1].hold, 0.25)  # it cost less than held
    assert await store.total("spend:day:a:1") == pytest.approx(8.25)
    assert await store.total("spend:run:r") == pytest.approx(8.25)
    again = await store.reserve(accounts, 1.75, now)
    assert again.granted and again.totals == (pytest.approx(8.25), pytest.approx(8.25))
    refused = await store.reserve(accounts, 0.5, now)
    assert not refused.granted and refused.totals[1] == pytest.approx(10.0)


async def test_an_unsettled_reservation_keeps_counting(store: LimitStore) -> None:
    """A crash between reserve and settle: the hold counts at its (upper-bound) amount,
    so the budget gets stricter, never looser, until its day's account is over."""
    accounts = (Account("spend:day:a:2", 3.0),)
    held = await store.reserve(accounts, 2.0, time.time())
    assert held.granted  # ... and the process dies here, before settle
    assert not (await store.reserve(accounts, 2.0, time.time())).granted
    assert (await store.reserve((Account("spend:day:a:3", 3.0),), 2.0, time.time())).granted


def test_two_stores_on_one_database_share_one_window(sqlite_db: Database) -> None:
    """Each thread has its own store object and engine (as separate processes would)."""
    used: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        db = Database.open(sqlite_db.url)
        try:
            mine = [
                SqlLimits(db).take_slot_now("rate:a:t", 20, 3600, time.time()) for _ in range(10)
            ]
        finally:
            db.close()
        with lock:
            used.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(used) == [*range(20), *([20] * 30)]


def test_redis_is_chosen_only_when_configured(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REDIS_ENV, raising=False)
    assert isinstance(limit_store(sqlite_db), SqlLimits)
    monkeypatch.setenv(REDIS_ENV, "redis://127.0.0.1:1/0")
    from steward.store.limits_redis import RedisLimits

    assert isinstance(limit_store(sqlite_db), RedisLimits)


async def test_a_terminated_connection_is_replaced_not_a_failed_call(
    postgres_named: NamedPostgres,
) -> None:
    """The limit store is read and written outside the journal, on every governed call
    and model call: a backend the database terminates (a failover, an admin), also in the
    middle of a transaction, is replaced and the step tried again, as the journal does,
    instead of the error reaching the run and failing it."""
    store = SqlLimits(postgres_named.db)
    accounts = [Account("agent:day", None)]
    stop = threading.Event()
    terminated = 0

    def terminate() -> None:
        nonlocal terminated
        while not stop.is_set():
            terminated += postgres_named.terminate_backends()
            time.sleep(0.01)

    async def worker(name: str) -> int:
        calls = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            held = await store.reserve(accounts, 1.0, time.time())
            await store.settle(held.hold, 1.0)
            await store.take_slot(f"tool:{name}", 1_000_000, 60.0, time.time())
            calls += 1
        return calls

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        done = await asyncio.gather(*(worker(str(n)) for n in range(4)))
    finally:
        stop.set()
        killer.join()
    assert terminated >= 5, terminated
    assert sum(done) >= 4
    # every settled reservation counted once or, where a commit's fate was unknown, more
    # (a reservation is never lost: fail closed)
    assert await store.total("agent:day") >= sum(done)


def test_settled_spend_is_one_row_per_account(any_db: Database) -> None:
    """An account's total is one row plus its open holds, however much it has spent:
    summing a row per settled reservation made each one cost more than the last (the
    superlinear part of resuming 10,000 runs)."""
    limits = SqlLimits(any_db)
    accounts = (Account("spend:run:r1", None), Account("spend:day:desk:1", 100.0))
    for _ in range(50):
        reservation = limits.reserve_now(accounts, 1.0, time.time())
        assert reservation.granted
        limits.settle_now(reservation.hold, 0.5)
    limits.settle_now(reservation.hold, 0.5)  # a retried settle adds nothing
    held = limits.reserve_now(accounts, 2.0, time.time())  # open: counts at its amount
    assert limits.total_now("spend:day:desk:1") == 25.0 + 2.0
    with any_db.reader.connect() as connection:
        usage = connection.execute(select(func.count()).select_from(limit_usage)).scalar_one()
        totals = connection.execute(select(func.count()).select_from(limit_totals)).scalar_one()
    assert (usage, totals) == (2, 2)  # the open hold's two rows; one settled row each
    assert not limits.reserve_now(accounts, 74.0, time.time()).granted  # 25 + 2 + 74 > 100
    limits.settle_now(held.hold, 0.0)
    assert limits.total_now("spend:day:desk:1") == 25.0
