"""What the gate hands back for a call: a status, the decision, and the result or error."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from steward.core.decision import Decision
from steward.core.messages import Message, ToolCall


class CallStatus(StrEnum):
    EXECUTED = "executed"
    DENIED = "denied"
    FAILED = "failed"
    WAITING = "waiting"  # parked on a person's approval
    UNKNOWN = "unknown"  # a side effect may or may not have happened (crash mid-call)
    # decide-only (gate/stages/release.py): allowed, and handed to the caller to run
    RELEASED = "released"


class CallOutcome(msgspec.Struct, frozen=True):
    call: ToolCall
    key: str
    status: CallStatus
    decision: Decision
    result: Any = None
    error_code: str = ""
    error: str = ""
    approval_id: str = ""
    replayed: bool = False

    def to_message(self) -> Message:
        """The tool message the model sees. Results are data, never instructions."""
        if self.status is CallStatus.EXECUTED:
            body: dict[str, Any] = {"ok": True, "result": self.result}
        else:
            body = {
                "ok": False,
                "status": self.status.value,
                "error": {
                    "code": self.error_code or self.decision.primary_code,
                    "message": self.error,
                },
            }
        return Message(
            role="tool",
            content=msgspec.json.encode(body).decode(),
            tool_call_id=self.call.id,
            name=self.call.name,
        )
