"""The approval queue: pending requests, and a reviewer's decision on each (approve,
reject with a comment, or approve with edited arguments, which policy decides again)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from steward.core.errors import ConflictError, PermissionDenied
from steward.core.values import MAX_JSON_DEPTH, json_problem
from steward.runtime.approvals import SEPARATION_OF_DUTIES, InvalidDecision
from steward.security.keys import Principal
from steward.server.console.render import PREFIX, page, redirect
from steward.server.console.session import Actor, Reader
from steward.server.service import RunService
from steward.store.approvals import list_approvals

router = APIRouter(prefix=PREFIX, include_in_schema=False)
QUEUE = f"{PREFIX}/approvals"


def _queue(
    request: Request,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    drafts: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service: RunService = request.app.state.service
    rows = list_approvals(service.db, "pending", 500)
    return page(
        request, "approvals.html", who, status_code=status_code, section="approvals",
        approvals=rows, errors=errors or {}, drafts=drafts or {},
    )  # fmt: skip


@router.get("/approvals")
def approvals_page(request: Request, who: Reader) -> Response:
    return _queue(request, who)


def _edited(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The edited arguments, or an error a person can act on."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, (
            f"The edited arguments are not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}). Nothing was decided."
        )
    except RecursionError:
        return (
            None,
            f"The edited arguments nest deeper than {MAX_JSON_DEPTH} levels. Nothing was decided.",
        )
    if not isinstance(value, dict):
        return None, "The edited arguments must be a JSON object ({...}). Nothing was decided."
    problem = json_problem(value)
    if problem is not None:
        return None, f"The edited arguments cannot be used: {problem}. Nothing was decided."
    return value, None


@router.post("/approvals/{approval_id}/decide")
async def decide(
    approval_id: str,
    request: Request,
    who: Actor,
    decision: Annotated[str, Form(pattern="^(approve|reject|edit)$")],
    comment: Annotated[str, Form(max_length=4000)] = "",
    arguments: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    service: RunService = request.app.state.service
    edited: dict[str, Any] | None = None
    if decision == "edit":
        edited, problem = _edited(arguments)
        if problem is not None:
            return _queue(
                request, who, errors={approval_id: problem}, drafts={approval_id: arguments},
                status_code=422,
            )  # fmt: skip
    try:
        decided = await service.approvals.decide(
            approval_id, who=who, approve=decision != "reject", comment=comment.strip(),
            arguments=edited,
        )  # fmt: skip
    except InvalidDecision as exc:
        problem = "A rejection needs a comment: say why." if exc.field == "comment" else f"{exc}."
        return _queue(request, who, errors={approval_id: problem}, status_code=422)
    except PermissionDenied as exc:
        if exc.code != SEPARATION_OF_DUTIES:
            raise  # a role that may not decide: the 403 page
        return redirect(QUEUE, f"Not decided: {exc}.", "error")
    except ConflictError as exc:
        return redirect(QUEUE, f"Not decided: {exc}.", "error")
    verb = {"approve": "Approved", "reject": "Rejected", "edit": "Approved with edits"}[decision]
    note = " — policy decides the edited call again" if decision == "edit" else ""
    return redirect(QUEUE, f"{verb} {decided.tool} for run {decided.run_id}{note}.")
