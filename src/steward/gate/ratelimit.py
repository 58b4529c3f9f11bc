"""Sliding-window rate counters per (agent, tool).

The policy decides; this only counts. Each slot taken is recorded in the journal (a
`rate_limit` gate decision), and a window this process has not seen yet is first filled
from there (`history`), so a restart does not hand an agent a fresh allowance. Several
processes each count their own calls plus what the journal held when they started; a
shared counter (Redis) is the answer for many processes at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

History = Callable[[str, str, float], list[float]]  # (agent, tool, since) -> slot times


def no_history(_agent: str, _tool: str, _since: float) -> list[float]:
    return []


class SlidingWindowCounter:
    def __init__(self, history: History = no_history) -> None:
        self.history = history
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def try_acquire(self, agent: str, tool: str, limit: int, period: float, now: float) -> int:
        """Returns the count in the window before this call; records the call only if
        that count is under `limit` (check-and-record is atomic)."""
        key = (agent, tool)
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                try:
                    past = sorted(t for t in self.history(agent, tool, now - period) if t <= now)
                except Exception:  # the journal cannot say: count the window as full (fail closed)
                    past = [now] * limit
                hits = self._hits[key] = deque(past)
            horizon = now - period
            while hits and hits[0] <= horizon:
                hits.popleft()
            used = len(hits)
            if used < limit:
                hits.append(now)
            return used
