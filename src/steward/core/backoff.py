"""Capped exponential backoff with full jitter: one formula for every retry loop (tool
calls in the gate, model calls, the journal's reconnects), so it is tuned in one place."""

from __future__ import annotations

import random


def backoff_ceiling(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """The longest wait before retry number `attempt` (1-based): base * 2^(attempt-1), capped."""
    return min(cap, base * 2.0 ** min(attempt - 1, 62))


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, backoff_ceiling]."""
    return random.uniform(0, backoff_ceiling(attempt, base, cap))
