"""Shared limits in Redis (STEWARD_REDIS_URL): each step is one Lua script, which Redis
runs atomically, so replicas of any number see exact counts.

Keys live under `steward:<hash of the database URL>:`, so deployments sharing a Redis
do not share limits. A rate window is a sorted set of slot times; a budget account is a
number (INCRBYFLOAT). Keys expire on their own: a window after its period, an account
`ACCOUNT_TTL` seconds after its last reservation.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from steward.core.errors import StoreError
from steward.store.limits import Account, Hold, Reservation, new_hold

ACCOUNT_TTL = 8 * 86400  # longer than a day and than any approval wait of a run

TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local used = redis.call('ZCARD', KEYS[1])
if used < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return used
"""

# KEYS: the accounts. ARGV[1]: amount, ARGV[2]: ttl, ARGV[3..]: each account's cap ('' = none).
RESERVE = """
local amount = tonumber(ARGV[1])
local totals = {}
local fits = 1
for i = 1, #KEYS do
  local total = tonumber(redis.call('GET', KEYS[i]) or '0')
  totals[i] = tostring(total)
  local cap = ARGV[i + 2]
  if cap ~= '' and total + amount > tonumber(cap) then fits = 0 end
end
if fits == 1 then
  for i = 1, #KEYS do
    redis.call('INCRBYFLOAT', KEYS[i], ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
end
table.insert(totals, 1, fits)
return totals
"""

SETTLE = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBYFLOAT', KEYS[i], ARGV[1]) end
end
return 0
"""


class RedisLimits:
    def __init__(self, url: str, *, namespace: str) -> None:
        self.url = url
        self.prefix = f"steward:{hashlib.sha256(namespace.encode()).hexdigest()[:16]}:"
        # redis.asyncio connections belong to the event loop that opened them
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def _scripts(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is None:
            client = aioredis.Redis.from_url(self.url)
            found = (
                client.register_script(TAKE_SLOT),
                client.register_script(RESERVE),
                client.register_script(SETTLE),
                client,
            )
            self._clients[loop] = found
        return found

    async def _run(self, index: int, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts()[index](keys=keys, args=args)
        except aioredis.RedisError as exc:
            raise StoreError(f"the limit store (Redis) failed: {exc}") from exc

    async def take_slot(self, key: str, limit: int, period: float, now: float) -> int:
        args = [repr(now), repr(now - period), limit, uuid.uuid4().hex, max(1, int(period) + 1)]
        return int(await self._run(0, [self.prefix + key], args))

    async def reserve(self, accounts: Sequence[Account], amount: float, now: float) -> Reservation:
        hold = new_hold(accounts, amount)
        caps = ["" if a.cap is None else repr(a.cap) for a in accounts]
        keys = [self.prefix + k for k in hold.keys]
        answer = await self._run(1, keys, [repr(amount), ACCOUNT_TTL, *caps])
        totals = tuple(float(t) for t in answer[1:])
        return Reservation(int(answer[0]) == 1, totals, hold)

    async def settle(self, hold: Hold, actual: float) -> None:
        if actual != hold.amount:
            keys = [self.prefix + k for k in hold.keys]
            await self._run(2, keys, [repr(actual - hold.amount)])

    async def total(self, key: str) -> float:
        client = self._scripts()[3]
        try:
            found = await client.get(self.prefix + key)
        except aioredis.RedisError as exc:
            raise StoreError(f"the limit store (Redis) failed: {exc}") from exc
        return float(found) if found is not None else 0.0
