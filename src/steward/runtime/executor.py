"""The executor seam the runner's loop is written against (DESIGN principle 11).

The seam is small: emit an event and replay what was recorded, make what was emitted
durable, reach approvals (the "signal" a waiting run resumes on, with its deadline),
and find a side effect's recorded outcome by its idempotency key. Engines implement it:
the embedded journal (steward/engines/embedded.py) and Temporal
(steward/engines/temporal/). Nothing here knows how events are stored.
"""

from __future__ import annotations

from typing import Protocol

from steward.core.approval import ApprovalView
from steward.core.events import Event
from steward.core.messages import ModelResponse
from steward.gate.scope import CallRecord, RunFindings
from steward.runtime.history import RunHistory


class Executor(Protocol):
    """What the runner needs; a RunScope for the gate as well."""

    run_id: str
    agent: str
    agent_version: str
    history: RunHistory

    @property
    def tags(self) -> dict[str, str]: ...

    def load(self) -> None:
        """Fold the run's recorded events into `history`, to replay them."""
        ...

    def emit(self, event: Event) -> None: ...

    async def durable(self) -> None: ...

    def recorded_model(self, step: int) -> ModelResponse | None: ...

    def recorded_call(self, key: str) -> CallRecord | None: ...

    def recorded_findings(self) -> RunFindings: ...

    async def approval(self, approval_id: str) -> ApprovalView | None: ...

    async def expire_approval(self, approval_id: str) -> None: ...

    def cancelled(self) -> str | None:
        """Why the run was cancelled from outside this activation, or None."""
        ...
