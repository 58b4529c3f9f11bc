"""MemoryScope: a RunScope that keeps events in a list, for testing the gate alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from steward.core.approval import ApprovalView
from steward.core.events import Event
from steward.gate.scope import CallRecord, RunFindings
from steward.runtime.history import RunHistory


@dataclass
class MemoryScope:
    run_id: str = "run_test"
    agent: str = "agent"
    agent_version: str = "v1"
    events: list[Event] = field(default_factory=list)
    approvals: dict[str, ApprovalView] = field(default_factory=dict)
    history: RunHistory = field(default_factory=RunHistory)
    durable_calls: int = 0

    @property
    def tags(self) -> dict[str, str]:
        return self.history.tags

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.history.apply(event)

    async def durable(self) -> None:
        self.durable_calls += 1

    def recorded_call(self, key: str) -> CallRecord | None:
        return self.history.calls.get(key)

    def recorded_findings(self) -> RunFindings:
        return self.history.findings

    async def approval(self, approval_id: str) -> ApprovalView | None:
        return self.approvals.get(approval_id)

    async def expire_approval(self, approval_id: str) -> None:
        view = self.approvals.get(approval_id)
        if view is not None:
            self.approvals[approval_id] = ApprovalView(
                view.id, view.key, "expired", view.call_hash, view.expires_at, view.used
            )

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]
