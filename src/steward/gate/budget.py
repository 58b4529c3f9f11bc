"""Spend ledger per agent: reserve an estimate before a costed action, settle the actual
after. Reservation and check happen under one lock, so concurrent runs cannot overshoot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from steward.core.decision import Decision

Check = Callable[[float, float, float], Decision | None]


@dataclass(slots=True)
class _Day:
    day: int = 0
    spent: float = 0.0
    seeded: bool = False
    alerted: bool = False


@dataclass(slots=True)
class BudgetLedger:
    runs: dict[str, float] = field(default_factory=dict)
    days: dict[str, _Day] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, agent: str, run_id: str, estimate: float, check: Check) -> Decision | None:
        """Apply `check(run_spent, day_spent, estimate)`; reserve only if it passes."""
        with self.lock:
            day = self._today(agent)
            run_spent = self.runs.get(run_id, 0.0)
            verdict = check(run_spent, day.spent, estimate)
            if verdict is None:
                self.runs[run_id] = run_spent + estimate
                day.spent += estimate
            return verdict

    def settle(self, agent: str, run_id: str, estimate: float, actual: float) -> None:
        with self.lock:
            delta = actual - estimate
            self.runs[run_id] = self.runs.get(run_id, 0.0) + delta
            self._today(agent).spent += delta

    def seed(self, agent: str, load_day: Callable[[int], float], run_id: str = "",
             load_run: Callable[[], float] | None = None) -> None:  # fmt: skip
        """Start from what the store says was spent today (once per agent and day) and,
        for a resumed run, what the run spent before."""
        with self.lock:
            day = self._today(agent)
            if not day.seeded:
                day.spent += load_day(day.day)
                day.seeded = True
            if load_run is not None and run_id and run_id not in self.runs:
                self.runs[run_id] = load_run()

    def crossed(self, agent: str, limit: float | None, fraction: float) -> float | None:
        """Today's spend, the first time it reaches `fraction` of `limit`; else None."""
        if limit is None:
            return None
        with self.lock:
            day = self._today(agent)
            if day.alerted or day.spent < fraction * limit:
                return None
            day.alerted = True
            return day.spent

    def run_spent(self, run_id: str) -> float:
        with self.lock:
            return self.runs.get(run_id, 0.0)

    def _today(self, agent: str) -> _Day:
        today = int(time.time() // 86400)
        day = self.days.get(agent)
        if day is None or day.day != today:
            day = self.days[agent] = _Day(today)
        return day
