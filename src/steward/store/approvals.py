"""Approvals: read, decide (approve / reject / approve with edits), expire.

A decision is a conditional update (only a pending, unexpired request changes) plus an
`approval.decided` event appended to the chain in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from steward.core.approval import ApprovalView
from steward.core.errors import ConflictError, NotFoundError, StewardError
from steward.core.events import ApprovalDecided
from steward.core.values import json_problem
from steward.store.chain import PendingEvent, Published, append_event
from steward.store.database import Database
from steward.store.json_fields import number_field, text_field
from steward.store.schema import approvals, runs


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    id: str
    run_id: str
    key: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    status: str
    reason: str
    requested_at: float
    expires_at: float
    decided_by: str
    comment: str
    used: bool

    def view(self, call_hash: str, decided_arguments: dict[str, Any] | None) -> ApprovalView:
        return ApprovalView(
            self.id,
            self.key,
            self.status,
            call_hash,
            self.expires_at,
            self.used,
            self.comment,
            self.decided_by,
            decided_arguments,
        )


def _row(row: Any) -> ApprovalRow:
    return ApprovalRow(
        id=row.id,
        run_id=row.run_id,
        key=row.call_id,
        agent=row.agent,
        tool=row.tool,
        arguments=json.loads(row.arguments),
        status=row.status,
        reason=row.reason,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by or "",
        comment=row.comment or "",
        used=row.used_at is not None,
    )


def get_approval_view(db: Database, approval_id: str) -> ApprovalView | None:
    with db.reader.connect() as connection:
        row = connection.execute(select(approvals).where(approvals.c.id == approval_id)).first()
    if row is None:
        return None
    edited = json.loads(row.decided_arguments) if row.decided_arguments else None
    return _row(row).view(row.call_hash, edited)


def get_approval(db: Database, approval_id: str) -> ApprovalRow:
    with db.reader.connect() as connection:
        row = connection.execute(select(approvals).where(approvals.c.id == approval_id)).first()
    if row is None:
        raise NotFoundError(f"no approval with id {approval_id!r}")
    return _row(row)


def list_approvals(
    db: Database,
    status: str | None = "pending",
    limit: int = 100,
    *,
    offset: int = 0,
    agent: str = "",
    tool: str = "",
    newest_first: bool = False,
    tags: Mapping[str, str] | None = None,
    amount_keys: Sequence[str] = (),
) -> list[ApprovalRow]:
    """Approvals oldest first (or newest first), optionally of one agent and/or tool, and
    of runs carrying every tag in `tags` (e.g. {"tenant": "acme"}); a page is `limit` rows
    from `offset` (ties broken by id, so pages never overlap). With `amount_keys`, the
    largest amount first: the first of those arguments that is a number, approvals with
    none last."""
    order = approvals.c.requested_at.desc() if newest_first else approvals.c.requested_at
    tie = approvals.c.id.desc() if newest_first else approvals.c.id
    query = select(approvals)
    if amount_keys:
        amounts = [number_field(db.dialect, approvals.c.arguments, k) for k in amount_keys]
        amount = amounts[0] if len(amounts) == 1 else func.coalesce(*amounts)
        query = query.order_by(amount.desc().nulls_last())
    query = query.order_by(order, tie).limit(limit).offset(offset)
    if status:
        query = query.where(approvals.c.status == status)
    if agent:
        query = query.where(approvals.c.agent == agent)
    if tool:
        query = query.where(approvals.c.tool == tool)
    if tags:  # pending approvals are few: join each to its run (by primary key), then test
        query = query.join(runs, runs.c.id == approvals.c.run_id).where(
            *(text_field(db.dialect, runs.c.tags, k) == v for k, v in sorted(tags.items()))
        )
    with db.reader.connect() as connection:
        return [_row(r) for r in connection.execute(query)]


def decide_approval(
    db: Database,
    approval_id: str,
    *,
    approve: bool,
    by: str,
    comment: str = "",
    arguments: dict[str, Any] | None = None,
    principal: str = "",
    now: float | None = None,
    on_commit: Published | None = None,
) -> ApprovalRow:
    """Approve or reject a pending request (`by` a readable label, `principal` the
    decider's principal id). Raises NotFoundError, or ConflictError when
    it was already decided or has expired (an expired request is marked expired).
    `on_commit` receives the committed event (a journal's `publish`, for its consumers)."""
    problem = json_problem(arguments) if arguments is not None else None
    if problem is not None:  # every face decides through here: nothing unreadable is stored
        raise StewardError(f"edited arguments: {problem}", code="request.invalid")
    moment = time.time() if now is None else now
    outcome = "approved" if approve else "rejected"
    with db.writer.begin() as connection:
        row = connection.execute(
            select(approvals).where(approvals.c.id == approval_id).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no approval with id {approval_id!r}")
        if row.status != "pending":
            raise ConflictError(f"approval {approval_id} is already {row.status}")
        expired = row.expires_at <= moment
        if expired:
            committed = set_approval_status(
                connection, row, "expired", "system", "expired before a decision", None, moment
            )
        else:
            committed = set_approval_status(
                connection, row, outcome, by, comment, arguments, moment, principal
            )
    if on_commit is not None:
        on_commit([committed])
    if expired:
        raise ConflictError(f"approval {approval_id} expired before a decision")
    return get_approval(db, approval_id)


def expire_approval(
    db: Database, approval_id: str, now: float | None = None, on_commit: Published | None = None
) -> None:
    moment = time.time() if now is None else now
    committed = None
    with db.writer.begin() as connection:
        row = connection.execute(
            select(approvals).where(approvals.c.id == approval_id).with_for_update()
        ).first()
        if row is not None and row.status == "pending" and row.expires_at <= moment:
            committed = set_approval_status(
                connection, row, "expired", "system", "expired before a decision", None, moment
            )
    if committed is not None and on_commit is not None:
        on_commit([committed])


def set_approval_status(
    connection: Any,
    row: Any,
    status: str,
    by: str,
    comment: str,
    arguments: dict[str, Any] | None,
    moment: float,
    principal: str = "",
) -> PendingEvent:
    """Decide a pending request inside the caller's transaction: the row changes and its
    `approval.decided` event joins the chain in the same commit."""
    connection.execute(
        update(approvals)
        .where(approvals.c.id == row.id, approvals.c.status == "pending")
        .values(
            status=status,
            decided_at=moment,
            decided_by=by,
            comment=comment,
            decided_arguments=json.dumps(arguments, sort_keys=True)
            if arguments is not None
            else None,
        )
    )
    event = ApprovalDecided(row.id, row.call_id, status, by, comment, arguments, principal)
    return append_event(connection, row.run_id, event, moment)


def overdue_approvals(
    db: Database, now: float | None = None, limit: int = 1000
) -> list[ApprovalRow]:
    """Pending requests whose time ran out: nobody decided them before they expired."""
    moment = time.time() if now is None else now
    query = (
        select(approvals)
        .where(approvals.c.status == "pending", approvals.c.expires_at <= moment)
        .order_by(approvals.c.expires_at)
        .limit(limit)
    )
    with db.reader.connect() as connection:
        return [_row(r) for r in connection.execute(query)]
