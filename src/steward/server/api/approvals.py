"""Approvals: list, get, decide (approve, reject with a comment, approve with edits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from steward.runtime.approvals import InvalidDecision
from steward.security.keys import Permission, Principal
from steward.server.api._common import service_of
from steward.server.auth import check, principal, scoped_reader
from steward.server.errors import ApiError
from steward.server.schemas import ApprovalOut, Decide
from steward.store.approvals import get_approval, list_approvals
from steward.store.runs import chains

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
    led = chains(service_of(request).db, {r.run_id for r in rows})
    return [ApprovalOut.with_chain(r, led.get(r.run_id, ())) for r in rows]


@router.get("/{approval_id}", response_model=ApprovalOut)
def get_approval_route(
    approval_id: str, request: Request, who: Principal = Depends(principal)
) -> ApprovalOut:
    db = service_of(request).db
    row = get_approval(db, approval_id)
    check(who, Permission.READ, row.agent)
    return ApprovalOut.with_chain(row, chains(db, [row.run_id]).get(row.run_id, ()))


@router.post("/{approval_id}/decision", response_model=ApprovalOut)
async def decide(
    approval_id: str, body: Decide, request: Request, who: Principal = Depends(principal)
) -> ApprovalOut:
    """Decide a pending request; the run resumes in the background. 403 for a key that
    may not decide it (an agent key; the person who started the run, with any of their
    keys), 409 when the request was already decided, has expired or was used."""
    try:
        decided = await service_of(request).approvals.decide(
            approval_id, who=who, approve=body.decision == "approve", comment=body.comment,
            arguments=body.arguments, confirmed=frozenset(body.confirm_changed),
        )  # fmt: skip
    except InvalidDecision as exc:
        raise ApiError(422, exc.code, f"body.{exc.field}: {exc}") from None
    db = service_of(request).db
    return ApprovalOut.with_chain(decided, chains(db, [decided.run_id]).get(decided.run_id, ()))
