"""The executor seam the runner's loop is written against (DESIGN principle 11), and its
first backend, the embedded journal.

The seam is small: emit an event, make what was emitted durable, replay a recorded
model step or call, and reach approvals (the "signal" a waiting run resumes on). A
Temporal backend maps the same calls onto workflow history, activities and signals.
"""

from __future__ import annotations

import time
from typing import Protocol

from steward.core.approval import ApprovalView
from steward.core.events import Event
from steward.core.messages import ModelResponse
from steward.gate.scope import CallRecord, RunFindings
from steward.runtime.history import RunHistory
from steward.store.approvals import expire_approval, get_approval_view
from steward.store.cancel import cancellation
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import read_journal


class Executor(Protocol):
    """What the runner needs; a RunScope for the gate as well."""

    run_id: str
    agent: str
    agent_version: str
    history: RunHistory

    @property
    def tags(self) -> dict[str, str]: ...

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


CANCEL_CHECK_SECONDS = 0.5


class EmbeddedExecutor:
    """Backed by the local journal: events go through group commit; replay state is
    folded from the run's own journal when a run resumes."""

    def __init__(
        self, db: Database, journal: Journal, run_id: str, agent: str, agent_version: str
    ) -> None:
        self.db = db
        self.journal = journal
        self.run_id = run_id
        self.agent = agent
        self.agent_version = agent_version
        self.history = RunHistory()
        self._last_ticket = 0
        self._next_cancel_check = 0.0  # monotonic time; the first step always checks

    def load(self) -> None:
        """Fold the run's recorded journal into the replay index."""
        for entry in read_journal(self.db, self.run_id):
            self.history.apply(entry.event)

    @property
    def tags(self) -> dict[str, str]:
        return self.history.tags

    def emit(self, event: Event) -> None:
        self._last_ticket = self.journal.append(self.run_id, event)
        self.history.apply(event)

    async def durable(self) -> None:
        await self.journal.flush(self._last_ticket)

    def recorded_model(self, step: int) -> ModelResponse | None:
        return self.history.models.get(step)

    def recorded_call(self, key: str) -> CallRecord | None:
        return self.history.calls.get(key)

    def recorded_findings(self) -> RunFindings:
        return self.history.findings

    async def approval(self, approval_id: str) -> ApprovalView | None:
        await self.durable()  # the request itself must be on record before we look
        return get_approval_view(self.db, approval_id)

    async def expire_approval(self, approval_id: str) -> None:
        expire_approval(self.db, approval_id, on_commit=self.journal.publish)

    def cancelled(self) -> str | None:
        """Asks the store at most every CANCEL_CHECK_SECONDS: a run cancelled by another
        process stops at its first step boundary after that, while a run of fast steps
        pays no store read per step (a read per step tripled the runner's overhead)."""
        now = time.monotonic()
        if now < self._next_cancel_check:
            return None
        self._next_cancel_check = now + CANCEL_CHECK_SECONDS
        return cancellation(self.db, self.run_id)
