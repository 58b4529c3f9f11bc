"""The embedded engine: the runtime's protocols over the local journal and SQL store.

Events go through the journal's group commit; a resumed run's replay state is folded
from its own journal; a side effect's outcome is found by its idempotency key in that
replay state; approvals and cancellations are rows the executor reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from steward.core.approval import ApprovalView
from steward.core.events import Event, RunResumed, RunStarted
from steward.core.messages import ModelResponse
from steward.gate.scope import CallRecord, RunFindings
from steward.gate.shared import SharedGateState, shared_gate_state
from steward.runtime.engine import RunView
from steward.runtime.history import RunHistory
from steward.store.approvals import expire_approval, get_approval_view
from steward.store.cancel import cancellation
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.recovery import claim_run
from steward.store.runs import RunRow, get_run, read_journal, save_agent_version
from steward.store.transient import is_transient, reason

CANCEL_CHECK_SECONDS = 0.5
log = logging.getLogger("steward.runner")


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
        try:
            return cancellation(self.db, self.run_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # a dropped connection, a lock held elsewhere: the run goes on (the journal
            # handles its own faults) and the next step asks again at once
            log.warning("run %s: cannot read whether it was cancelled: %s", self.run_id,
                        reason(exc))  # fmt: skip
            self._next_cancel_check = now
            return None


@dataclass(frozen=True, slots=True)
class EmbeddedStore:
    """The runner's run store over the SQL store."""

    db: Database
    journal: Journal

    def get_run(self, run_id: str) -> RunRow:
        return get_run(self.db, run_id)

    async def claim(self, seen: RunView, event: RunStarted | RunResumed) -> bool:
        """Off the loop: it may wait for the write lock (store/recovery.py)."""
        if not isinstance(seen, RunRow):  # the claim compares the row as this store read it
            raise TypeError(f"claim needs the RunRow this store read, not {type(seen).__name__}")
        claimed = await asyncio.to_thread(claim_run, self.db, seen, event, self.journal.publish)
        return claimed is not None

    def save_agent_version(
        self, agent: str, version: str, text: str, prompt: tuple[str, str] | None = None
    ) -> None:
        save_agent_version(self.db, agent, version, text, prompt)


@dataclass(slots=True)
class EmbeddedEngine:
    """One database and its journal: `Runner(EmbeddedEngine(db, journal))`."""

    db: Database
    journal: Journal
    store: EmbeddedStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = EmbeddedStore(self.db, self.journal)

    @property
    def gate_state(self) -> SharedGateState:
        # kill switch, limits and breakers: one state per database in this process,
        # shared by every runner, agent object and agent version over it
        return shared_gate_state(self.db)

    def executor(self, run_id: str, agent: str, agent_version: str) -> EmbeddedExecutor:
        return EmbeddedExecutor(self.db, self.journal, run_id, agent, agent_version)
