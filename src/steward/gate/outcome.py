"""What the gate hands back for a call: a status, the decision, and the result or error."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from steward.core.decision import Decision
from steward.core.events import RunEnding
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
    # WAITING on approvals other than its own (a delegated run's, steward/orchestration/)
    waiting_on: tuple[str, ...] = ()
    # this call ends its run so (RunEnding): the runner finishes the run with it
    ending: RunEnding | None = None

    @property
    def awaited(self) -> tuple[str, ...]:
        """The approvals a WAITING call waits on."""
        return self.waiting_on or ((self.approval_id,) if self.approval_id else ())

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


class ToolWaits(Exception):
    """Raised by a tool whose call waits on people's decisions elsewhere (a delegated
    run's approvals): the execute stage turns it into a WAITING outcome on those ids,
    records no result, and the call is run again (same key) when the run resumes. Only a
    keyed or idempotent tool may raise it: it is entered again."""

    def __init__(self, approval_ids: tuple[str, ...], message: str = "") -> None:
        super().__init__(message or f"waiting for {', '.join(approval_ids)}")
        self.approval_ids = approval_ids


class EndsRun(Exception):
    """Raised by a tool whose call ends its run (`ending`): with `code`, the call is
    recorded failed (`code`, `message`); without, succeeded with `result`. The outcome
    carries the ending, live and replayed; the runner finishes the run with it."""

    def __init__(
        self, ending: RunEnding, *, result: Any = None, code: str = "", message: str = ""
    ) -> None:
        super().__init__(message or ending.reason)
        self.ending, self.result, self.code, self.message = ending, result, code, message
