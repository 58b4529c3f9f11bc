"""What the facade answers: typed values, never exceptions, for every decision.

A submitted call ends `Executed` (with what the tool returned, scanned), `Denied` (with
the reasons), `Waiting` (for a person: the approval id) or `Failed` (the tool raised,
timed out, or its outcome is unknown). Decide-only (`Run.decide`) answers `Allowed`
instead of running the tool. A person's decision is `Approved` or `Rejected`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from steward.core.decision import Decision


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a stable machine-readable `code` (`tool.unlisted`, `args.invalid`,
    `agent.disabled`, `rate.exceeded`, `approval.rejected`, ...), a sentence for people,
    and the policy rule that decided, when one did."""

    code: str
    message: str
    rule: str = ""


def reasons_of(decision: Decision) -> tuple[Reason, ...]:
    rule = decision.rule_ids[0] if decision.rule_ids else ""
    return tuple(Reason(r.code, r.message, rule) for r in decision.reasons)


@dataclass(frozen=True, slots=True)
class Executed:
    """The call ran (or had run: a call id seen before answers with what it did).
    `arguments` are what ran: a person's edits, if they edited the call."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    result: Any
    status: Literal["executed"] = "executed"


@dataclass(frozen=True, slots=True)
class Denied:
    call_id: str
    tool: str
    reasons: tuple[Reason, ...]
    message: str
    status: Literal["denied"] = "denied"

    @property
    def code(self) -> str:
        """The first reason's code."""
        return self.reasons[0].code if self.reasons else "denied"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A person must decide first: wait with `Steward.wait_for_decision(approval_id)`,
    then `Run.resume(call_id)`."""

    call_id: str
    tool: str
    approval_id: str
    reason: str
    status: Literal["waiting"] = "waiting"


@dataclass(frozen=True, slots=True)
class Failed:
    """The tool raised or timed out (`code`: `tool.error`, `tool.timeout`, `tool.rejected`,
    ...). `unknown`: a write that may or may not have taken effect; it is never repeated
    and a person must reconcile it. `on_timeout` says how a timed-out call ended."""

    call_id: str
    tool: str
    error: str
    on_timeout: str = ""
    code: str = "tool.failed"
    unknown: bool = False
    status: Literal["failed"] = "failed"


@dataclass(frozen=True, slots=True)
class Allowed:
    """Decide-only: the caller may run the tool now, once, with exactly these
    `arguments` (a person's edits, if edited), then report with `Run.record_result`."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    status: Literal["allowed"] = "allowed"


@dataclass(frozen=True, slots=True)
class Approved:
    """A person approved; `arguments` are what will run (edited, if they edited)."""

    approval_id: str
    arguments: dict[str, Any]
    by: str
    comment: str = ""
    edited: bool = False
    run_id: str = ""  # the run and call it decides: `(await st.attach(run_id)).resume(call_id)`
    call_id: str = ""
    status: Literal["approved"] = "approved"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A person rejected (`status` "rejected"), or nobody decided in time ("expired"),
    or the run was cancelled ("cancelled")."""

    approval_id: str
    by: str
    comment: str = ""
    status: Literal["rejected", "expired", "cancelled"] = "rejected"
    run_id: str = ""
    call_id: str = ""


Outcome = Executed | Denied | Waiting | Failed
"""What `Run.call` and `Run.resume` answer."""

Verdict = Allowed | Denied | Waiting | Executed | Failed
"""What `Run.decide` and `Run.resume(execute=False)` answer: `Executed` / `Failed` for a
call whose result is already on record (it is never allowed twice)."""

PersonDecision = Approved | Rejected
"""What `Steward.wait_for_decision` answers."""
