"""A circuit breaker per key (a tool, a model endpoint): after `threshold` consecutive
failures it opens for `cooldown` seconds, then lets one trial call through (half-open).

Every call that `admit` let through must end in `record`: ok=True (success), ok=False
(failure) or ok=None (it ended with no verdict on the provider, say it was cancelled).
A half-open trial that ended with no verdict frees the trial slot, so the next call is
the next trial: a trial that was cancelled never leaves the breaker open for good.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

Change = Literal["opened", "closed"]


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


@dataclass(slots=True)
class CircuitBreakers:
    threshold: int = 5
    cooldown: float = 30.0
    _states: dict[str, _State] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, key: str, now: float) -> bool:
        state = self._states.get(key)
        if state is None or state.opened_at is None:  # the common case needs no lock
            return True
        with self._lock:
            if state.opened_at is None:
                return True
            if now - state.opened_at < self.cooldown or state.trial_in_flight:
                return False
            state.trial_in_flight = True  # half-open: one trial
            return True

    def record(self, key: str, ok: bool | None, now: float) -> Change | None:
        """Record how an admitted call ended; returns the state change it caused, if any:
        "opened" when this failure opened the breaker, "closed" when a success closed it."""
        if ok is not False and key not in self._states:  # never failed: nothing to record
            return None
        with self._lock:
            state = self._states.setdefault(key, _State())
            state.trial_in_flight = False
            if ok is None:  # no verdict: the trial slot is free again, nothing else changes
                return None
            if ok:
                was_open = state.opened_at is not None
                state.failures = 0
                state.opened_at = None
                return "closed" if was_open else None
            state.failures += 1
            if state.failures >= self.threshold and state.opened_at is None:
                state.opened_at = now
                return "opened"
            if state.opened_at is not None:
                state.opened_at = now  # a failed trial re-opens
            return None
