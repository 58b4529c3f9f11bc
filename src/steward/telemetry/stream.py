"""What a telemetry consumer receives: committed events, in journal order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Committed(Protocol):
    """One committed event (the journal's PendingEvent satisfies this)."""

    @property
    def run_id(self) -> str | None: ...

    @property
    def ts(self) -> float: ...

    @property
    def type(self) -> str: ...

    @property
    def event(self) -> object: ...


class Consumer(Protocol):
    """Called on the journal's writer thread after each commit. Must be quick and must
    not raise (the journal counts and drops a consumer's exceptions)."""

    def __call__(self, batch: Sequence[Committed]) -> None: ...
