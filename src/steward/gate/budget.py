"""Budgets per agent: reserve an estimate before a costed action, settle the actual after.

The accounts live in the deployment's limit store (store/limits.py): the spend of each
run and of each agent's day, shared by every process and every version of the agent.
Check and reservation are one atomic step there, so concurrent runs, in one process or
many, cannot overshoot a cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from steward.core.decision import Decision, deny
from steward.spec.models import CostControls
from steward.store.limits import Account, LimitStore
from steward.store.limits import Hold as Hold  # the runtime sees reservations through here

Check = Callable[[float, float, float], Decision | None]  # (run spent, day spent, estimate)


def today(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


def run_account(run_id: str) -> str:
    return f"spend:run:{run_id}"


def day_account(agent: str, day: int) -> str:
    return f"spend:day:{agent}:{day}"


def tag_account(tag: str, value: str, day: int) -> str:
    """One tag value's day, shared by every agent that caps that tag."""
    return f"spend:tag:{tag}={value}:{day}"


NOTHING_HELD = Hold("", (), 0.0)


@dataclass(frozen=True, slots=True)
class TreeCap:
    """A delegated run's share of its tree's budget: every reservation of the run (model
    or tool) is held on the root run's per-run account too, capped by the root agent's
    max_cost_per_run_usd, so a tree cannot overspend its root however the spend is split."""

    root_run_id: str
    cap: float


# Set by the runner for the activation of a delegated run (steward/orchestration/); read
# here, where every reservation is made, so model calls and tool calls both see it.
TREE_CAP: ContextVar[TreeCap | None] = ContextVar("steward_tree_cap", default=None)


@dataclass(frozen=True, slots=True)
class Caps:
    per_run: float | None
    per_day: float | None
    per_tag: tuple[tuple[str, float], ...] = ()  # (tag, daily cap per value of it)
    tree: TreeCap | None = None  # a delegated run: its root's per-run account and cap

    @property
    def any(self) -> bool:
        return (
            self.per_run is not None
            or self.per_day is not None
            or bool(self.per_tag)
            or self.tree is not None
        )


def caps_of(costs: CostControls) -> Caps:
    """The caps an agent's spec declares, and its tree's when the run is delegated: the
    one reading for tools and model calls."""
    return Caps(
        costs.max_cost_per_run_usd,
        costs.max_daily_spend_usd,
        tuple(sorted(costs.max_daily_spend_per_tag_usd.items())),
        TREE_CAP.get(),
    )


@dataclass(slots=True)
class BudgetLedger:
    store: LimitStore

    async def reserve(
        self,
        agent: str,
        run_id: str,
        estimate: float,
        caps: Caps,
        check: Check,
        tags: Mapping[str, str] | None = None,
    ) -> Hold | Decision:
        """Hold `estimate` on the run's, the day's and the run's tag values' accounts, or
        the decision why not (`check(run_spent, day_spent, estimate)` words the first two)."""
        invalid = check(0.0, 0.0, estimate)  # a NaN or negative estimate, or one over a cap alone
        if invalid is not None:
            return invalid
        if estimate == 0.0:  # a free call cannot overshoot: no store round trip
            return NOTHING_HELD
        tags = tags or {}
        now = time.time()
        accounts = [
            Account(run_account(run_id), caps.per_run),
            Account(day_account(agent, today(now)), caps.per_day),
        ]
        for tag, cap in caps.per_tag:
            if tag not in tags:  # spend no tenant's budget can bound: fail closed
                return deny(
                    "budget.untagged",
                    f"the run has no {tag!r} tag, and max_daily_spend_per_tag_usd caps "
                    f"spend per {tag}",
                    f"cost_controls.max_daily_spend_per_tag_usd.{tag}",
                )
            accounts.append(Account(tag_account(tag, tags[tag], today(now)), cap))
        if caps.tree is not None and caps.tree.root_run_id != run_id:
            accounts.append(Account(run_account(caps.tree.root_run_id), caps.tree.cap))
        reservation = await self.store.reserve(accounts, estimate, now)
        if reservation.granted:
            return reservation.hold
        run_spent, day_spent, *tag_spent = reservation.totals
        if caps.tree is not None and caps.tree.root_run_id != run_id:
            tree_spent = tag_spent.pop()
            if tree_spent + estimate > caps.tree.cap:
                return deny(
                    "budget.tree_exhausted",
                    f"the run tree of {caps.tree.root_run_id}: spend ${tree_spent + estimate:.4f}"
                    f" would exceed the root's max_cost_per_run_usd ${caps.tree.cap:.2f}",
                    "cost_controls.max_cost_per_run_usd",
                )
        over = check(run_spent, day_spent, estimate)
        if over is not None:
            return over
        for (tag, cap), spent in zip(caps.per_tag, tag_spent, strict=True):
            if spent + estimate > cap:
                return deny(
                    "budget.tag_exhausted",
                    f"{tag} {tags[tag]!r}: daily spend ${spent + estimate:.4f} would exceed "
                    f"${cap:.2f}",
                    f"cost_controls.max_daily_spend_per_tag_usd.{tag}",
                )
        return deny("budget.exhausted", f"the budget has no room for ${estimate:.4f}")

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
