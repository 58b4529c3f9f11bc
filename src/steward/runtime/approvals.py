"""Deciding what waits for a person: one service for the API, the console and the CLI.

A decision is: authorise the decider (role and agent scope; an agent key never decides),
four eyes (whoever started the run may not decide its requests, compared by principal,
so two keys of one person are one person), check the decision itself, record it, and
resume the run. A request found expired is a conflict, and its run still resumes, to
finish without the call. How a run resumes is the caller's: the server spawns a
background activation, the CLI resumes inline (or not at all); `Resume` is that choice.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from steward.core.errors import InvalidInput

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


def check_decision(approve: bool, comment: str, arguments: dict[str, Any] | None) -> None:
    if not approve and not comment.strip():
        raise InvalidDecision("comment", "a rejection needs a comment")
    if not approve and arguments is not None:
        raise InvalidDecision("arguments", "only an approval carries edits")
