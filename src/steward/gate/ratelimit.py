"""Sliding-window rate limits per (agent, tool), counted in the deployment's limit store
(store/limits.py), so every process and every version of an agent share one window and
a restart does not hand an agent a fresh allowance.

The policy decides; this only counts. Each slot taken also goes on the run's record (a
`RateSlotTaken` event) for the audit trail, and a call counts once: the same call
re-entering the gate (a resumed run re-checks an approved call, or a delegation whose
child waited) finds its slot on record and takes no second one (gate/stages/checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from steward.store.limits import LimitStore


def rate_key(agent: str, tool: str) -> str:
    return f"rate:{agent}:{tool}"


@dataclass(slots=True)
class RateCounter:
    store: LimitStore

    async def try_acquire(
        self, agent: str, tool: str, limit: int, period: float, now: float
    ) -> int:
        """The count in the window before this call; the call takes a slot only if that
        count is under `limit` (check and take are one atomic step in the store)."""
        return await self.store.take_slot(rate_key(agent, tool), limit, period, now)
