"""What the gate needs from the run it serves: emit events, make them durable, look up
what was already recorded (for replay), and reach approvals. The runtime's executors
implement this; the gate never imports the runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from steward.core.approval import ApprovalView
from steward.core.events import Event
from steward.core.messages import Source
from steward.gate.outcome import CallOutcome


@dataclass(slots=True)
class CallRecord:
    """What the journal already holds for one call key."""

    proposed: bool = False
    sources: dict[str, Source] | None = None  # the provenance traced when it was proposed
    started: bool = False
    outcome: CallOutcome | None = None
    approval_id: str = ""
    approval_used: bool = False
    on_timeout: str = ""  # how a call cut off at its timeout ended (ToolFailed.on_timeout)


class RunScope(Protocol):
    run_id: str
    agent: str
    agent_version: str

    def emit(self, event: Event) -> None: ...

    async def durable(self) -> None: ...

    def recorded_call(self, key: str) -> CallRecord | None: ...

    async def approval(self, approval_id: str) -> ApprovalView | None: ...

    async def expire_approval(self, approval_id: str) -> None: ...
