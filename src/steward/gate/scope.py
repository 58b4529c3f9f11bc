"""What the gate needs from the run it serves: emit events, make them durable, look up
what was already recorded (for replay), and reach approvals. The runtime's executors
implement this; the gate never imports the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from steward.core.approval import ApprovalView
from steward.core.events import Event, Finding
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
    rate_slot: bool = False  # it took its rate-limit slot (RateSlotTaken): never a second


@dataclass(frozen=True, slots=True)
class StandingFinding:
    """An injection finding whose action (review or deny) reaches the calls proposed in a
    step after `step` (-1: every call of the run)."""

    key: str  # where it was found: a call's key, or the run's `:input`
    tool: str
    source: str
    action: str
    step: int
    finding: Finding


@dataclass(slots=True)
class RunFindings:
    """What the run's journal holds of its scans: the keys scanned (so a scan of the
    input is recorded once) and the findings that stand over the calls that follow."""

    scanned: set[str] = field(default_factory=set)
    standing: list[StandingFinding] = field(default_factory=list)


class RunScope(Protocol):
    run_id: str
    agent: str
    agent_version: str

    @property
    def tags(self) -> dict[str, str]: ...  # the run's tags (tenant budgets)

    def emit(self, event: Event) -> None: ...

    async def durable(self) -> None: ...

    def recorded_call(self, key: str) -> CallRecord | None: ...

    def recorded_findings(self) -> RunFindings: ...

    async def approval(self, approval_id: str) -> ApprovalView | None: ...

    async def expire_approval(self, approval_id: str) -> None: ...
