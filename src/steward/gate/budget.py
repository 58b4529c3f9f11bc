"""Budgets per agent: reserve an estimate before a costed action, settle the actual after.

The accounts live in the deployment's limit store (store/limits.py): the spend of each
run and of each agent's day, shared by every process and every version of the agent.
Check and reservation are one atomic step there, so concurrent runs, in one process or
many, cannot overshoot a cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from steward.core.decision import Decision, deny
from steward.store.limits import Account, Hold, LimitStore

Check = Callable[[float, float, float], Decision | None]  # (run spent, day spent, estimate)


def today(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


def run_account(run_id: str) -> str:
    return f"spend:run:{run_id}"


def day_account(agent: str, day: int) -> str:
    return f"spend:day:{agent}:{day}"


NOTHING_HELD = Hold("", (), 0.0)


@dataclass(frozen=True, slots=True)
class Caps:
    per_run: float | None
    per_day: float | None

    @property
    def any(self) -> bool:
        return self.per_run is not None or self.per_day is not None


@dataclass(slots=True)
class BudgetLedger:
    store: LimitStore

    async def reserve(
        self, agent: str, run_id: str, estimate: float, caps: Caps, check: Check
    ) -> Hold | Decision:
        """Hold `estimate` on the run's and the day's accounts, or the decision why not
        (`check(run_spent, day_spent, estimate)` words it)."""
        invalid = check(0.0, 0.0, estimate)  # a NaN or negative estimate, or one over a cap alone
        if invalid is not None:
            return invalid
        if estimate == 0.0:  # a free call cannot overshoot: no store round trip
            return NOTHING_HELD
        now = time.time()
        accounts = (
            Account(run_account(run_id), caps.per_run),
            Account(day_account(agent, today(now)), caps.per_day),
        )
        reservation = await self.store.reserve(accounts, estimate, now)
        if reservation.granted:
            return reservation.hold
        run_spent, day_spent = reservation.totals
        return check(run_spent, day_spent, estimate) or deny(
            "budget.exhausted", f"the budget has no room for ${estimate:.4f}"
        )

    async def settle(self, hold: Hold, actual: float) -> None:
        if hold.keys:
            await self.store.settle(hold, actual)

    async def crossed(self, agent: str, limit: float | None, fraction: float) -> float | None:
        """Today's spend, the first time (in the deployment) it reaches `fraction` of
        `limit`; else None."""
        if limit is None:
            return None
        now = time.time()
        spent = await self.store.total(day_account(agent, today(now)))
        if spent < fraction * limit:
            return None
        first = await self.store.take_slot(f"alert:{agent}:{today(now)}", 1, 86400.0, now) == 0
        return spent if first else None

    async def spent(self, key: str) -> float:
        return await self.store.total(key)
