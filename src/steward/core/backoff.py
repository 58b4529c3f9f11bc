"""Exponential backoff with full jitter: the one wait between retries, for tools and models."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): uniform in
    [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
