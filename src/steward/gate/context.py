"""Per-call state carried through the stages, and the stage protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from steward.core.decision import Decision, Verdict
from steward.core.events import GateDecided
from steward.core.messages import ToolCall
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.scope import RunScope
from steward.policy import Policy
from steward.tools.base import Tool


@dataclass(slots=True)
class CallContext:
    scope: RunScope
    policy: Policy
    call: ToolCall
    key: str
    step: int
    tool: Tool | None
    sources: dict[str, str] = field(default_factory=dict)
    decision: Decision | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def decided(self, stage: str, decision: Decision) -> None:
        """Record a stage's decision as an event (every decision is explainable)."""
        self.decision = decision
        self.scope.emit(GateDecided(self.key, self.call.name, stage, decision))

    def stop(
        self, stage: str, decision: Decision, status: CallStatus = CallStatus.DENIED
    ) -> CallOutcome:
        """End the call here with a decision; later stages never see it."""
        self.decided(stage, decision)
        return CallOutcome(
            self.call,
            self.key,
            status,
            decision,
            error_code=decision.primary_code,
            error=decision.reasons[0].message if decision.reasons else decision.verdict.value,
        )


Next = Callable[[CallContext], Awaitable[CallOutcome]]


class Stage(Protocol):
    name: str

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome: ...


def is_deny(decision: Decision) -> bool:
    return decision.verdict is Verdict.DENY
