"""Versions and labels: promote a version through the evaluation gate (or an admin's
override, with a reason), roll a label back, split a label's traffic with a canary, read
labels, their history, evaluation results and the diff between two versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from steward.core.events import LabelMoved
from steward.evals.promotion import Actor, PromotionRefused
from steward.evals.promotion import canary as set_canary
from steward.evals.promotion import promote as promote_version
from steward.evals.promotion import rollback as rollback_label
from steward.prompts.diff import version_diff
from steward.security.keys import Permission, Principal, Role
from steward.server.api._common import service_of
from steward.server.api.agents import agent_overview
from steward.server.auth import check, principal, requires
from steward.server.errors import ApiError
from steward.server.schemas import CanaryBody, LabelMoveOut, LabelOut, PromoteBody, RollbackBody
from steward.store.evaluations import list_evals
from steward.store.labels import label_moves, list_labels

router = APIRouter(prefix="/v1/agents", tags=["labels"])


def _actor(who: Principal) -> Actor:
    return Actor(who.label, who.role is Role.ADMIN)


def _out(event: LabelMoved) -> LabelMoveOut:
    return LabelMoveOut(
        agent=event.agent,
        label=event.label,
        version=event.version,
        previous=event.previous or None,
        action=event.action,
        by=event.by,
        reason=event.reason,
        suite=event.suite or None,
        eval_result=event.eval_result or None,
        canary_version=event.canary_version or None,
        canary_percent=event.canary_percent,
    )


def _refused(exc: PromotionRefused) -> ApiError:
    return ApiError(409, exc.code, str(exc))


@router.get("/{name}/labels", response_model=list[LabelOut])
def labels(name: str, request: Request, who: Principal = Depends(principal)) -> list[LabelOut]:
    check(who, Permission.READ, name)
    rows = list_labels(service_of(request).db, name)
    return [
        LabelOut(
            label=r.label,
            version=r.version,
            canary_version=r.canary_version,
            canary_percent=r.canary_percent,
            updated_at=r.updated_at,
            updated_by=r.updated_by,
        )
        for r in rows
    ]


@router.get("/{name}/labels/history")
def history(
    name: str, request: Request, who: Principal = Depends(principal)
) -> list[dict[str, Any]]:
    """Every move of the agent's labels, oldest first."""
    check(who, Permission.READ, name)
    return [
        {
            "label": m.label,
            "version": m.version,
            "previous": m.previous,
            "action": m.action,
            "by": m.by,
            "reason": m.reason,
            "eval_result": m.eval_result,
            "canary_version": m.canary_version,
            "canary_percent": m.canary_percent,
            "at": m.at,
        }
        for m in label_moves(service_of(request).db, name)
    ]


@router.get("/{name}/evals")
def evals(name: str, request: Request, who: Principal = Depends(principal)) -> list[dict[str, Any]]:
    """Evaluation results of the agent's versions, newest first."""
    check(who, Permission.READ, name)
    return [
        {
            "id": e.id,
            "version": e.version,
            "suite": e.suite,
            "passed": e.passed,
            "required_passed": e.required_passed,
            "required_total": e.required_total,
            "scored_rate": e.scored_rate,
            "created_at": e.created_at,
            "created_by": e.created_by,
        }
        for e in list_evals(service_of(request).db, name)
    ]


@router.get("/{name}/diff")
def diff(
    name: str,
    request: Request,
    old: str = Query(min_length=1, max_length=64),
    new: str = Query(min_length=1, max_length=64),
    who: Principal = Depends(principal),
) -> dict[str, str]:
    """The unified diff of the spec and prompt file from version `old` to `new`."""
    check(who, Permission.READ, name)
    return {"old": old, "new": new, "diff": version_diff(service_of(request).db, name, old, new)}


@router.post("/{name}/promote", response_model=LabelMoveOut)
def promote(
    name: str,
    body: PromoteBody,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> LabelMoveOut:
    """Point a label at a version: 409 `promotion.refused` unless that exact version's
    latest evaluation on its spec's required suite passed; an admin may override with a
    reason. Audited."""
    service = service_of(request)
    try:
        event = promote_version(
            service.db,
            name,
            body.version,
            label=body.label,
            actor=_actor(who),
            override_reason=body.reason if body.override else None,
            on_commit=service.journal.publish,
        )
    except PromotionRefused as exc:
        raise _refused(exc) from None
    return _out(event)


@router.post("/{name}/rollback", response_model=LabelMoveOut)
def rollback(
    name: str,
    body: RollbackBody,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> LabelMoveOut:
    """Move a label back to the version it pointed at before its current one."""
    service = service_of(request)
    agent_overview(service, name)
    try:
        event = rollback_label(
            service.db,
            name,
            label=body.label,
            actor=_actor(who),
            reason=body.reason,
            on_commit=service.journal.publish,
        )
    except PromotionRefused as exc:
        raise _refused(exc) from None
    return _out(event)


@router.post("/{name}/canary", response_model=LabelMoveOut)
def canary(
    name: str,
    body: CanaryBody,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> LabelMoveOut:
    """Send `percent`% of a label's runs to `version` (0 ends the canary); the version
    passes the promotion gate first."""
    service = service_of(request)
    try:
        event = set_canary(
            service.db,
            name,
            body.version,
            label=body.label,
            percent=body.percent,
            actor=_actor(who),
            override_reason=body.reason if body.override else None,
            on_commit=service.journal.publish,
        )
    except PromotionRefused as exc:
        raise _refused(exc) from None
    return _out(event)
