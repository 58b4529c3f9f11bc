"""Shared limits: rate windows and budgets counted where every process of a deployment
sees the same numbers.

Two operations, each atomic against every other process using the same store:

- `take_slot(key, limit, period, now)`: how many slots of `key` were taken in the last
  `period` seconds; one more is taken only if that count is under `limit`.
- `reserve(accounts, amount, now)`: the total of each account (spent plus held); the
  amount is held on every account only if it fits under each account's cap. `settle`
  replaces the held amount by what was really spent (0 releases it).

A reservation a crash leaves unsettled keeps counting at its held amount, an upper
bound: a crash can make a budget stricter, never looser. Budget accounts are per run and
per day, so what a crash holds stops counting when its day (or run) is over.

`SqlLimits` locks the keys in the database (SQLite: the write lock `BEGIN IMMEDIATE`
takes; PostgreSQL: transaction advisory locks, taken in key order). `RedisLimits`
(store/limits_redis.py) runs the same two steps as Lua scripts. `MemoryLimits` counts in
this process only: for tests and for code with no store (it is never chosen silently).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, delete, func, insert, select, text

from steward.core.errors import StoreError
from steward.store.database import Database
from steward.store.schema import limit_usage
from steward.store.transient import retrying

REDIS_ENV = "STEWARD_REDIS_URL"


@dataclass(frozen=True, slots=True)
class Account:
    """A budget account: `cap` None counts without limiting."""

    key: str
    cap: float | None


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    keys: tuple[str, ...]
    amount: float


@dataclass(frozen=True, slots=True)
class Reservation:
    granted: bool
    totals: tuple[float, ...]  # each account's total before this reservation
    hold: Hold


class LimitStore(Protocol):
    async def take_slot(self, key: str, limit: int, period: float, now: float) -> int: ...

    async def reserve(
        self, accounts: Sequence[Account], amount: float, now: float
    ) -> Reservation: ...

    async def settle(self, hold: Hold, actual: float) -> None: ...

    async def total(self, key: str) -> float: ...


def _fits(totals: Sequence[float], accounts: Sequence[Account], amount: float) -> bool:
    return all(a.cap is None or t + amount <= a.cap for t, a in zip(totals, accounts, strict=True))


def new_hold(accounts: Sequence[Account], amount: float) -> Hold:
    return Hold(uuid.uuid4().hex, tuple(a.key for a in accounts), amount)


_ADD_TOTAL = text(
    "INSERT INTO limit_totals (key, amount) VALUES (:key, :amount) ON CONFLICT (key)"
    " DO UPDATE SET amount = limit_totals.amount + excluded.amount"
)
_SUM = text(
    "SELECT COALESCE((SELECT amount FROM limit_totals WHERE key = :key), 0.0)"
    " + COALESCE((SELECT SUM(amount) FROM limit_usage WHERE key = :key), 0.0)"
)


class SqlLimits:
    """Limits in the deployment's database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _lock(self, connection: Connection, keys: Sequence[str]) -> None:
        # SQLite: the writer's transactions begin IMMEDIATE, which holds the database's
        # write lock already. PostgreSQL: one advisory lock per key, in order (no deadlock).
        if self.db.dialect == "postgresql":
            for key in sorted(set(keys)):
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})

    def take_slot_now(self, key: str, limit: int, period: float, now: float) -> int:
        token = uuid.uuid4().hex  # tells a retried step whether its slot already landed
        return retrying(lambda: self._take_slot(key, limit, period, now, token))

    def _take_slot(self, key: str, limit: int, period: float, now: float, token: str) -> int:
        horizon = now - period
        with self.db.writer.begin() as connection:
            self._lock(connection, [key])
            connection.execute(
                delete(limit_usage).where(limit_usage.c.key == key, limit_usage.c.at <= horizon)
            )
            landed = select(limit_usage.c.id).where(
                limit_usage.c.key == key, limit_usage.c.slot_token == token
            )
            if connection.execute(landed).first() is not None:  # an earlier attempt committed
                slot = limit_usage.c.slot_token
                used = connection.execute(
                    select(func.count()).where(
                        limit_usage.c.key == key, limit_usage.c.at > horizon, slot != token
                    )
                ).scalar_one()
                return int(used)
            used = connection.execute(
                select(func.count()).where(limit_usage.c.key == key, limit_usage.c.at > horizon)
            ).scalar_one()
            if used < limit:
                connection.execute(
                    insert(limit_usage).values(key=key, at=now, amount=1.0, slot_token=token)
                )
        return int(used)

    def reserve_now(self, accounts: Sequence[Account], amount: float, now: float) -> Reservation:
        hold = new_hold(accounts, amount)  # its id tells a retried step what already landed
        return retrying(lambda: self._reserve(hold, accounts, amount, now))

    def _reserve(
        self, hold: Hold, accounts: Sequence[Account], amount: float, now: float
    ) -> Reservation:
        with self.db.writer.begin() as connection:
            self._lock(connection, hold.keys)
            totals = tuple(self._sum(connection, key) for key in hold.keys)
            landed = select(limit_usage.c.id).where(limit_usage.c.hold == hold.id)
            if connection.execute(landed).first() is not None:  # an earlier attempt committed
                return Reservation(True, tuple(total - amount for total in totals), hold)
            granted = _fits(totals, accounts, amount)
            if granted:
                connection.execute(
                    insert(limit_usage),
                    [{"key": k, "at": now, "amount": amount, "hold": hold.id} for k in hold.keys],
                )
        return Reservation(granted, totals, hold)

    def settle_now(self, hold: Hold, actual: float) -> None:
        # settling clears `hold`: a retry after a commit that landed changes nothing
        retrying(lambda: self._settle(hold, actual))

    def _settle(self, hold: Hold, actual: float) -> None:
        """The hold's rows go, and `actual` joins each account's settled total (one row
        per account, store/schema.py); a retry finds no rows and adds nothing."""
        with self.db.writer.begin() as connection:
            settled = connection.execute(
                delete(limit_usage)
                .where(limit_usage.c.hold == hold.id)
                .returning(limit_usage.c.key)
            ).all()
            for (key,) in settled:
                connection.execute(_ADD_TOTAL, {"key": key, "amount": actual})

    def total_now(self, key: str) -> float:
        return retrying(lambda: self._total(key))

    def _total(self, key: str) -> float:
        with self.db.reader.connect() as connection:
            return self._sum(connection, key)

    @staticmethod
    def _sum(connection: Connection, key: str) -> float:
        """Settled total plus open holds (and rows settled before limit_totals), in one
        statement: one snapshot, so a settle committing meanwhile is seen whole or not."""
        return float(connection.execute(_SUM, {"key": key}).scalar_one())

    # The event loop never waits on another process's lock: each step runs on a thread.
    async def take_slot(self, key: str, limit: int, period: float, now: float) -> int:
        return await asyncio.to_thread(self.take_slot_now, key, limit, period, now)

    async def reserve(self, accounts: Sequence[Account], amount: float, now: float) -> Reservation:
        return await asyncio.to_thread(self.reserve_now, accounts, amount, now)

    async def settle(self, hold: Hold, actual: float) -> None:
        await asyncio.to_thread(self.settle_now, hold, actual)

    async def total(self, key: str) -> float:
        return await asyncio.to_thread(self.total_now, key)


@dataclass(slots=True)
class MemoryLimits:
    """Limits counted in this process only (tests, and code with no store)."""

    slots: dict[str, deque[float]] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def take_slot(self, key: str, limit: int, period: float, now: float) -> int:
        with self.lock:
            hits = self.slots.setdefault(key, deque())
            while hits and hits[0] <= now - period:
                hits.popleft()
            used = len(hits)
            if used < limit:
                hits.append(now)
            return used

    async def reserve(self, accounts: Sequence[Account], amount: float, now: float) -> Reservation:
        hold = new_hold(accounts, amount)
        with self.lock:
            totals = tuple(self.totals.get(k, 0.0) for k in hold.keys)
            granted = _fits(totals, accounts, amount)
            if granted:
                for key in hold.keys:
                    self.totals[key] = self.totals.get(key, 0.0) + amount
        return Reservation(granted, totals, hold)

    async def settle(self, hold: Hold, actual: float) -> None:
        with self.lock:
            for key in hold.keys:
                self.totals[key] = self.totals.get(key, 0.0) + actual - hold.amount

    async def total(self, key: str) -> float:
        with self.lock:
            return self.totals.get(key, 0.0)


def limit_store(db: Database) -> LimitStore:
    """The deployment's limit store: Redis when STEWARD_REDIS_URL is set, else `db`."""
    url = os.environ.get(REDIS_ENV, "").strip()
    if url:
        try:
            from steward.store.limits_redis import RedisLimits
        except ImportError:
            raise StoreError(
                f"{REDIS_ENV} is set but the redis package is not installed "
                "(pip install 'steward[redis]')"
            ) from None
        return RedisLimits(url, namespace=db.url)
    return SqlLimits(db)
