"""A circuit breaker per name (a tool, a model provider): after `threshold` consecutive
failures it opens for `cooldown` seconds, then lets one trial call through (half-open)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


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

    def admit(self, tool: str, now: float) -> bool:
        state = self._states.get(tool)
        if state is None or state.opened_at is None:  # the common case needs no lock
            return True
        with self._lock:
            if state.opened_at is None:
                return True
            if now - state.opened_at < self.cooldown or state.trial_in_flight:
                return False
            state.trial_in_flight = True  # half-open: one trial
            return True

    def record(self, tool: str, ok: bool, now: float) -> bool:
        """Record a result; returns True when this failure opened the breaker."""
        if ok and tool not in self._states:  # healthy and never failed: nothing to record
            return False
        with self._lock:
            state = self._states.setdefault(tool, _State())
            state.trial_in_flight = False
            if ok:
                state.failures = 0
                state.opened_at = None
                return False
            state.failures += 1
            if state.failures >= self.threshold and state.opened_at is None:
                state.opened_at = now
                return True
            if state.opened_at is not None:
                state.opened_at = now  # a failed trial re-opens
            return False
