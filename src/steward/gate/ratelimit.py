"""Sliding-window rate counters per (agent, tool), in process.

The policy decides; this only counts. Counts live in memory, so a restart starts the
windows afresh: a known limit of the embedded engine (a shared Redis counter is the
scale-out answer).
"""

from __future__ import annotations

import threading
from collections import deque


class SlidingWindowCounter:
    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def try_acquire(self, agent: str, tool: str, limit: int, period: float, now: float) -> int:
        """Returns the count in the window before this call; records the call only if
        that count is under `limit` (check-and-record is atomic)."""
        with self._lock:
            hits = self._hits.setdefault((agent, tool), deque())
            horizon = now - period
            while hits and hits[0] <= horizon:
                hits.popleft()
            used = len(hits)
            if used < limit:
                hits.append(now)
            return used
