"""Retrying a model inside the run's time bound, and telling the run about each attempt.

`RetryPolicy.wait` is the one decision "retry this model, after how long, or move on":
transient errors (`ProviderError.retryable`: 429, 5xx, 529, timeouts, connection resets)
are retried with exponential backoff and full jitter; a provider's `Retry-After` is
honoured as given (when it is no longer than `max_wait_seconds`); no wait may end past the
run's deadline. FallbackModel asks it for the streamed and the non-streamed path alike.

The run's deadline and the sink for attempt events travel in context variables: the
runner sets the deadline, the model caller sets the sink (it knows the run's journal);
a model used outside a run has neither and simply retries within its policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from steward.core.backoff import backoff_delay
from steward.core.errors import ModelError, ProviderError
from steward.core.events import Event

# the run's deadline on the event loop's clock (loop.time()), when a run bounds the call
run_deadline: ContextVar[float | None] = ContextVar("steward_run_deadline", default=None)
# where FallbackModel reports failed attempts and breaker changes (the run's journal)
attempt_sink: ContextVar[Callable[[Event], None] | None] = ContextVar(
    "steward_attempt_sink", default=None
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # per model, the first one included
    backoff_seconds: float = 0.5  # the first backoff's upper bound; doubles per attempt
    max_backoff_seconds: float = 8.0
    max_wait_seconds: float = 30.0  # a longer Retry-After means: fall back now

    def wait(self, error: ModelError, attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1` of the same model, or None when
        the next step is the next model (not transient, attempts used, no time left)."""
        if attempt >= self.attempts or not isinstance(error, ProviderError) or not error.retryable:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_wait_seconds:
                return None
            delay = error.retry_after
        else:
            delay = backoff_delay(attempt, self.backoff_seconds, self.max_backoff_seconds)
        left = remaining()
        return None if left is not None and delay >= left else delay


NO_RETRY = RetryPolicy(attempts=1)


def remaining() -> float | None:
    """Seconds left before the run's deadline, if a run bounds this call."""
    deadline = run_deadline.get()
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


def report(event: Event) -> None:
    sink = attempt_sink.get()
    if sink is not None:
        sink(event)


@contextmanager
def deadline(when: float | None) -> Iterator[None]:
    """Within this block, model calls know the run ends at `when` (loop.time() clock)."""
    token = run_deadline.set(when)
    try:
        yield
    finally:
        run_deadline.reset(token)


@contextmanager
def reporting(sink: Callable[[Event], None]) -> Iterator[None]:
    """Within this block, FallbackModel reports attempts and breaker changes to `sink`."""
    token = attempt_sink.set(sink)
    try:
        yield
    finally:
        attempt_sink.reset(token)
