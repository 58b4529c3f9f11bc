"""Deciding what waits for a person: one service for the API, the console and the CLI.

A decision is: authorise the decider (role and agent scope; an agent key never decides),
four eyes (whoever started the run may not decide its requests, compared by principal,
so two keys of one person are one person), check the decision itself, record it, and
resume the run. A request found expired is a conflict, and its run still resumes, to
finish without the call. How a run resumes is the caller's: the server spawns a
background activation, the CLI resumes inline (or not at all); `Resume` is that choice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from steward.core.decision import Verdict
from steward.core.errors import ConflictError, InvalidInput, PermissionDenied
from steward.security.keys import (
    STARTED_BY,
    STARTED_BY_PRINCIPAL,
    Permission,
    Principal,
    Role,
    authorize,
)
from steward.store.approvals import ApprovalRow, decide_approval, get_approval
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.keys import principal_named
from steward.store.runs import get_run
from steward.tools.builtin import ASK_HUMAN

SEPARATION_OF_DUTIES = "auth.separation_of_duties"

Resume = Callable[[str, str], Awaitable[None]]  # (run id, why) -> the run is driven on


# -- which edits need a second look ------------------------------------------------------
# An argument is an identifier when its key names one (a word of the key, split at `_`, `-`,
# `.` and camelCase humps, is in IDENTIFIER_WORDS: `order_id`, `customerId`, `iban`, `to`,
# `recipients`, `account_number`), or when a value has an
# identifier's form (an e-mail address, a UUID, an IBAN, or a code of 4+ digits with at most
# a short prefix: "10114", "#10056", "ORD-2231"). Amounts are numbers, not identifiers.
IDENTIFIER_WORDS = frozenset({
    "id", "ids", "uuid", "guid", "key", "account", "accounts", "iban", "bic", "swift",
    "routing", "number", "no", "email", "emails", "to", "cc", "bcc", "recipient",
    "recipients", "payee", "beneficiary", "destination", "phone", "user", "username",
    "customer", "order", "card", "wallet", "address", "sku", "ticket", "invoice",
})  # fmt: skip
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_IDENTIFIER_FORMS = (
    re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),  # e-mail
    re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),  # UUID
    re.compile(r"[A-Z]{2}\d{2}[A-Z0-9 ]{10,30}"),  # IBAN
    re.compile(r"#?[A-Za-z]{0,4}[-_#]?\d{4,}"),  # order / account / ticket numbers
)


def is_identifier(key: str, *values: Any) -> bool:
    """Whether an argument names *which* thing a call acts on (the rule above)."""
    words = {w.lower() for w in _WORDS.findall(key)}
    if words & IDENTIFIER_WORDS:
        return True
    return any(
        isinstance(v, str) and any(f.fullmatch(v.strip()) for f in _IDENTIFIER_FORMS)
        for v in values
    )


@dataclass(frozen=True, slots=True)
class ArgumentChange:
    """One argument as proposed and as edited (`None` when absent on that side)."""

    key: str
    proposed: Any
    edited: Any
    identifier: bool
    kind: str  # changed | added | removed


def argument_changes(proposed: dict[str, Any], edited: dict[str, Any]) -> list[ArgumentChange]:
    """What an edit changes, key by key in a stable order; unchanged keys are left out."""
    changes = []
    for key in sorted(set(proposed) | set(edited)):
        before, after = proposed.get(key), edited.get(key)
        if key in proposed and key in edited and before == after:
            continue
        kind = "added" if key not in proposed else "removed" if key not in edited else "changed"
        changes.append(ArgumentChange(key, before, after, is_identifier(key, before, after), kind))
    return changes


def unconfirmed_identifiers(
    proposed: dict[str, Any], edited: dict[str, Any], confirmed: Collection[str]
) -> list[ArgumentChange]:
    """Identifier changes the decider has not confirmed, field by field."""
    return [
        c for c in argument_changes(proposed, edited) if c.identifier and c.key not in confirmed
    ]


class InvalidDecision(InvalidInput):
    """A decision that cannot be taken as given; `field` names what to fix."""

    code = "request.invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def run_starter(db: Database, run_id: str) -> str | None:
    """The principal id that started a run, or None when no principal did (a local
    `steward run`). Runs started before principals existed carry only a `role:name`
    label; names are unique principals now, so the name finds the principal."""
    tags = get_run(db, run_id).tags
    if tags.get(STARTED_BY_PRINCIPAL):
        return tags[STARTED_BY_PRINCIPAL]
    role, _, name = tags.get(STARTED_BY, "").partition(":")
    if name and role in {r.value for r in Role if r is not Role.AGENT}:
        return principal_named(db, name)
    return None


def authorise(db: Database, who: Principal, pending: ApprovalRow) -> None:
    """Raise PermissionDenied unless `who` may decide `pending`."""
    decision = authorize(who, Permission.DECIDE_APPROVAL, pending.agent)
    if decision.verdict is not Verdict.ALLOW:
        reason = decision.reasons[0]
        raise PermissionDenied(reason.message, code=reason.code)
    if run_starter(db, pending.run_id) == who.principal_id:
        raise PermissionDenied(
            f"{who.name} started run {pending.run_id}; another person must decide its requests",
            code=SEPARATION_OF_DUTIES,
        )


def _check(approve: bool, comment: str, arguments: dict[str, Any] | None) -> None:
    if not approve and not comment.strip():
        raise InvalidDecision("comment", "a rejection needs a comment")
    if not approve and arguments is not None:
        raise InvalidDecision("arguments", "only an approval carries edits")


class ApprovalService:
    """Decide approval requests over one database; `resume` drives a run on afterwards."""

    def __init__(self, db: Database, journal: Journal, resume: Resume) -> None:
        self.db = db
        self.journal = journal
        self.resume = resume

    async def decide(
        self,
        approval_id: str,
        *,
        who: Principal,
        approve: bool,
        comment: str = "",
        arguments: dict[str, Any] | None = None,
        confirmed: Collection[str] = (),
    ) -> ApprovalRow:
        """Approve (as proposed, or with edited `arguments`, which policy decides again)
        or reject (with a comment); an ask_human request is answered by approving with
        the answer as comment. An edit that changes an identifier (`is_identifier`) must
        name that key in `confirmed`, or it is refused (InvalidDecision naming
        `arguments.<key>`). Raises PermissionDenied, InvalidDecision, NotFoundError or
        ConflictError (decided, used, or expired: then its run resumes all the same)."""
        pending = await asyncio.to_thread(get_approval, self.db, approval_id)
        await asyncio.to_thread(authorise, self.db, who, pending)
        _check(approve, comment, arguments)
        if arguments is not None:
            for change in unconfirmed_identifiers(pending.arguments, arguments, confirmed):
                raise InvalidDecision(
                    f"arguments.{change.key}",
                    f"the edit {change.kind} identifier '{change.key}' "
                    f"({change.proposed!r} -> {change.edited!r}); confirm that change to approve",
                )
        try:
            row = await asyncio.to_thread(
                decide_approval, self.db, approval_id, approve=approve, by=who.label,
                comment=comment, arguments=arguments, principal=who.principal_id,
                on_commit=self.journal.publish,
            )  # fmt: skip
        except ConflictError:
            found = await asyncio.to_thread(get_approval, self.db, approval_id)
            if found.status == "expired":
                await self.resume(found.run_id, f"approval {found.id} expired")
            raise
        await self.resume(row.run_id, f"approval {row.id} {row.status} by {who.label}")
        return row

    async def answer(self, approval_id: str, *, who: Principal, text: str) -> ApprovalRow:
        """Answer an agent's question (an ask_human request): approve it with `text`."""
        pending = await asyncio.to_thread(get_approval, self.db, approval_id)
        if pending.tool != ASK_HUMAN:
            raise InvalidDecision(
                "approval",
                f"approval {approval_id} is for a call of '{pending.tool}', not a question; "
                "approve or reject it instead",
            )
        if not text.strip():
            raise InvalidDecision("text", "the answer is empty")
        return await self.decide(approval_id, who=who, approve=True, comment=text.strip())
