"""Approvals: list, get, decide (approve, reject with a comment, approve with edits)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from steward.security.keys import Permission, Principal
from steward.server.api._common import service_of
from steward.server.auth import check, principal, scoped_reader
from steward.server.errors import ApiError
from steward.server.schemas import ApprovalOut, Decide
from steward.store.approvals import get_approval, list_approvals

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


@router.get("", response_model=list[ApprovalOut])
def list_approvals_route(
    request: Request,
    who: Principal = Depends(scoped_reader),
    state: Annotated[
        str, Query(alias="status", pattern="^(pending|approved|rejected|expired|cancelled|all)$")
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ApprovalOut]:
    """Approval requests, oldest first (pending by default)."""
    rows = list_approvals(service_of(request).db, None if state == "all" else state, limit)
    if who.agent is not None:
        rows = [r for r in rows if r.agent == who.agent]
    return [ApprovalOut.of(r) for r in rows]


@router.get("/{approval_id}", response_model=ApprovalOut)
def get_approval_route(
    approval_id: str, request: Request, who: Principal = Depends(principal)
) -> ApprovalOut:
    row = get_approval(service_of(request).db, approval_id)
    check(who, Permission.READ, row.agent)
    return ApprovalOut.of(row)


@router.post("/{approval_id}/decision", response_model=ApprovalOut)
async def decide(
    approval_id: str, body: Decide, request: Request, who: Principal = Depends(principal)
) -> ApprovalOut:
    """Decide a pending request; the run resumes in the background. 409 when the request
    was already decided, has expired or was used."""
    service = service_of(request)
    row = await asyncio.to_thread(get_approval, service.db, approval_id)
    check(who, Permission.DECIDE_APPROVAL, row.agent)
    if body.decision == "reject" and not body.comment.strip():
        raise ApiError(422, "request.invalid", "body.comment: a rejection needs a comment")
    if body.decision == "reject" and body.arguments is not None:
        raise ApiError(422, "request.invalid", "body.arguments: only an approval carries edits")
    decided = await service.decide(
        row,
        approve=body.decision == "approve",
        by=who.label,
        comment=body.comment,
        arguments=body.arguments,
    )
    return ApprovalOut.of(decided)
