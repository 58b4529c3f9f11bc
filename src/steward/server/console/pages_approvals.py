"""The approval queue: pending requests, and a reviewer's decision on each (approve,
reject with a comment, or approve with edited arguments, which policy decides again)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from steward.core.decision import Verdict
from steward.core.errors import ConflictError, NotFoundError, PermissionDenied
from steward.core.values import MAX_JSON_DEPTH, json_problem
from steward.runtime.agent import AgentRuntime
from steward.runtime.approvals import SEPARATION_OF_DUTIES, InvalidDecision
from steward.security.keys import Permission, Principal, authorize
from steward.server.auth import check
from steward.server.console.approval_card import build_card, conversation
from steward.server.console.render import PREFIX, page, redirect
from steward.server.console.session import Actor, Reader
from steward.server.errors import ApiError
from steward.server.service import RunService
from steward.store.approvals import get_approval, list_approvals

router = APIRouter(prefix=PREFIX, include_in_schema=False)
QUEUE = f"{PREFIX}/approvals"


PAGE_SIZE = 20


SORTS = ("oldest", "newest", "amount")
# An argument is amount-like when its name says so and the tool's schema makes it a number.
AMOUNT_NAME = re.compile(r"(^|_)(amount|total|price|cost|sum|fee|value|balance)(_|$)", re.I)
TAG = re.compile(r"^\s*([A-Za-z0-9_.:-]{1,64})\s*=\s*(.{1,200}?)\s*$")


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue's query: a page of pending approvals, filtered and sorted server-side.
    `tag` is `key=value` on the run (a tenant: `tenant=acme`); sort `amount` puts the
    largest amount-like argument first."""

    page: int = 1
    agent: str = ""
    tool: str = ""
    newest_first: bool = False
    tag: str = ""
    by_amount: bool = False

    @property
    def sort(self) -> str:
        return "amount" if self.by_amount else "newest" if self.newest_first else ""

    @property
    def tags(self) -> dict[str, str]:
        found = TAG.match(self.tag)
        return {found.group(1): found.group(2)} if found else {}

    def url(self, **change: Any) -> str:
        view = replace(self, **change)
        params = {
            "page": str(view.page) if view.page > 1 else "",
            "agent": view.agent,
            "tool": view.tool,
            "tag": view.tag,
            "sort": view.sort,
        }
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{QUEUE}?{query}" if query else QUEUE


def _queue(
    request: Request,
    who: Principal,
    *,
    view: QueueView | None = None,
    errors: dict[str, str] | None = None,
    drafts: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service: RunService = request.app.state.service
    view = view or QueueView()
    rows = list_approvals(
        service.db, "pending", PAGE_SIZE + 1, offset=(view.page - 1) * PAGE_SIZE,
        agent=view.agent, tool=view.tool, newest_first=view.newest_first, tags=view.tags,
        amount_keys=amount_fields(service.agents.values()) if view.by_amount else (),
    )  # fmt: skip
    more = len(rows) > PAGE_SIZE
    drafts = drafts or {}
    cards = []
    for row in rows[:PAGE_SIZE]:
        draft, _ = _edited(drafts[row.id]) if row.id in drafts else (None, None)
        cards.append(build_card(service.db, row, service.agents.get(row.agent), draft))
    return page(
        request, "approvals.html", who, status_code=status_code, section="approvals",
        cards=cards, errors=errors or {}, drafts=drafts, view=view, more=more, single=False,
        agents=sorted(service.agents),
        tools=sorted({t for a in service.agents.values() for t in a.loaded.spec.tools}),
    )  # fmt: skip


def amount_fields(agents: Iterable[AgentRuntime]) -> tuple[str, ...]:
    """The amount-like arguments of the loaded agents' tools (sorted, for a stable SQL):
    named like an amount (amount_usd, total, price, fee...) and a number in the schema."""
    found: set[str] = set()
    for agent in agents:
        for tool in agent.tools.values():
            for name, schema in tool.parameters.get("properties", {}).items():
                if AMOUNT_NAME.search(name) and _numeric(schema):
                    found.add(name)
    return tuple(sorted(found))


def _numeric(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return bool({"number", "integer"} & set(kinds)) or any(_numeric(o) for o in options)


@router.get("/approvals")
def approvals_page(
    request: Request,
    who: Reader,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    agent: Annotated[str, Query(max_length=64)] = "",
    tool: Annotated[str, Query(max_length=64)] = "",
    sort: Annotated[str, Query(pattern="^(oldest|newest|amount)?$")] = "",
    tag: Annotated[str, Query(max_length=270)] = "",
) -> Response:
    if tag.strip() and not TAG.match(tag):
        raise ApiError(
            422, "request.invalid", f"tag: {tag!r} is not key=value (a run tag, e.g. tenant=acme)"
        )
    view = QueueView(page_number, agent, tool, sort == "newest", tag.strip(), sort == "amount")
    return _queue(request, who, view=view)


@router.get("/approvals/{approval_id}")
def approval_page(approval_id: str, request: Request, who: Reader) -> Response:
    """One approval's card on its own page, pending or decided (404 page when unknown)."""
    service: RunService = request.app.state.service
    row = get_approval(service.db, approval_id)
    check(who, Permission.READ, row.agent)
    card = build_card(service.db, row, service.agents.get(row.agent))
    return page(
        request, "approvals.html", who, section="approvals", cards=[card], errors={},
        drafts={}, view=QueueView(), more=False, single=True, agents=[], tools=[],
        conversation=conversation(service.db, row),
    )  # fmt: skip


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


@router.post("/approvals/reject")
async def reject_many(
    request: Request,
    who: Actor,
    comment: Annotated[str, Form(max_length=4000)] = "",
    ids: Annotated[list[str] | None, Form(max_length=PAGE_SIZE)] = None,
) -> Response:
    """Reject the ticked requests with one comment, each through the one approval service
    (so each is authorised, four-eyes checked and recorded on its own). Approving in bulk
    is deliberately not offered: each approval is a decision about one call."""
    service: RunService = request.app.state.service
    may = authorize(who, Permission.DECIDE_APPROVAL)
    if may.verdict is not Verdict.ALLOW:  # a role that may not decide: the 403 page
        raise PermissionDenied(may.reasons[0].message, code=may.reasons[0].code)
    chosen = list(dict.fromkeys(ids or ()))
    if not chosen:
        return redirect(QUEUE, "Nothing rejected: tick the requests to reject first.", "error")
    if not comment.strip():
        return _queue(
            request, who, errors=dict.fromkeys(chosen, "A bulk rejection needs a comment: say why."),
            status_code=422,
        )  # fmt: skip
    done: list[str] = []
    refused: list[str] = []
    for approval_id in chosen:
        try:
            await service.approvals.decide(
                approval_id, who=who, approve=False, comment=comment.strip()
            )
            done.append(approval_id)
        except (PermissionDenied, ConflictError, NotFoundError, InvalidDecision) as exc:
            refused.append(f"{approval_id} ({exc})")
    note = f"Rejected {len(done)} request(s)."
    if refused:
        return redirect(QUEUE, f"{note} Not decided: {'; '.join(refused)}.", "error")
    return redirect(QUEUE, note)


@router.post("/approvals/{approval_id}/decide")
async def decide(
    approval_id: str,
    request: Request,
    who: Actor,
    decision: Annotated[str, Form(pattern="^(approve|reject|edit)$")],
    comment: Annotated[str, Form(max_length=4000)] = "",
    arguments: Annotated[str, Form(max_length=100_000)] = "",
    confirm: Annotated[list[str] | None, Form(max_length=100)] = None,
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
            arguments=edited, confirmed=frozenset(confirm or ()),
        )  # fmt: skip
    except InvalidDecision as exc:
        problem = "A rejection needs a comment: say why." if exc.field == "comment" else f"{exc}."
        if exc.field.startswith("arguments."):  # an identifier changed: show the diff
            problem = (
                f"Not decided: {exc}. Tick the confirmation for '{exc.field[10:]}' "
                "below if you mean it."
            )
        drafts = {approval_id: arguments} if decision == "edit" else {}
        return _queue(request, who, errors={approval_id: problem}, drafts=drafts, status_code=422)
    except PermissionDenied as exc:
        if exc.code != SEPARATION_OF_DUTIES:
            raise  # a role that may not decide: the 403 page
        return redirect(QUEUE, f"Not decided: {exc}.", "error")
    except ConflictError as exc:
        return redirect(QUEUE, f"Not decided: {exc}.", "error")
    verb = {"approve": "Approved", "reject": "Rejected", "edit": "Approved with edits"}[decision]
    note = " — policy decides the edited call again" if decision == "edit" else ""
    return redirect(QUEUE, f"{verb} {decided.tool} for run {decided.run_id}{note}.")
