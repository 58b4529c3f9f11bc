"""The approval service over the SQL store: authorise the decider, four eyes, check the
decision (steward/runtime/approvals.py), record it, and resume the run. A request found
expired is a conflict, and its run still resumes, to finish without the call. How a run
resumes is the caller's (`Resume`): the server spawns a background activation or signals
the run's workflow, the CLI resumes inline (or not at all)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from steward.core.decision import Verdict
from steward.core.errors import ConflictError, PermissionDenied
from steward.runtime.approvals import (
    SEPARATION_OF_DUTIES,
    InvalidDecision,
    Resume,
    check_decision,
    unconfirmed_identifiers,
)
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
from steward.store.runs import get_run, root_of
from steward.tools.builtin import ASK_HUMAN


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
        check_decision(approve, comment, arguments)
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
                await self.resume(await self._root(found.run_id), f"approval {found.id} expired")
            raise
        why = f"approval {row.id} {row.status} by {who.label}"
        await self.resume(await self._root(row.run_id), why)
        return row

    async def _root(self, run_id: str) -> str:
        """The run to resume: the root of the run's tree (a delegated run is driven by
        its root, which enters it again: steward/orchestration/)."""
        return await asyncio.to_thread(root_of, self.db, run_id)

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
