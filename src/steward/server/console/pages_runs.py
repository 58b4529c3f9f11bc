"""Console pages for runs: the list (filters, older pages) and one run's timeline."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from steward.core.errors import NotFoundError, StewardError
from steward.core.events import RunStatus
from steward.core.times import parse_moment
from steward.security.keys import Permission, authorize
from steward.server.api._common import decode_cursor, encode_cursor
from steward.server.api.agents import agents_overview
from steward.server.auth import check
from steward.server.console.render import PREFIX, TERMINAL, page, redirect
from steward.server.console.session import Actor, Reader
from steward.server.console.timeline import build_timeline
from steward.server.run_tree import tree_of
from steward.server.service import RunService
from steward.store.approvals import list_approvals
from steward.store.runs import get_run, list_runs, read_journal
from steward.store.search import RunFilter, SearchError, parse_tags

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 25
STATUSES = [s.value for s in RunStatus]


def _service(request: Request) -> RunService:
    service: RunService = request.app.state.service
    return service


@router.get("/runs")
def runs_page(
    request: Request,
    who: Reader,
    agent: str = "",
    status: str = "",
    cursor: str = "",
    q: str = "",
    tag: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    service = _service(request)
    status = status if status in STATUSES else ""
    before, before_id = decode_cursor(cursor) if cursor else (None, None)
    problem = None
    try:
        wanted = _filter(q, tag, since, until)
    except SearchError as error:
        wanted, problem = None, {"message": f"{error.field}: {error.message}", "kind": "error"}
    rows = [] if wanted is None else list_runs(
        service.db, agent=agent or None, status=status or None, limit=PAGE_SIZE + 1,
        before=before, before_id=before_id, where=wanted,
    )  # fmt: skip
    shown = rows[:PAGE_SIZE]
    filters = {k: v for k, v in (("agent", agent), ("status", status), ("q", q), ("tag", tag),
                                 ("since", since), ("until", until)) if v}  # fmt: skip
    older = None
    if len(rows) > PAGE_SIZE:
        last = shown[-1]
        older = "?" + urlencode({**filters, "cursor": encode_cursor(last.created_at, last.id)})
    return page(
        request, "runs.html", who, section="runs", runs=shown, agent=agent, status=status,
        statuses=STATUSES, agents=[a.name for a in agents_overview(service)],
        older=older, newest="?" + urlencode(filters) if cursor else None, q=q, tag=tag,
        since=since, until=until, flash=problem, filtered=bool(filters),
    )  # fmt: skip


def _filter(q: str, tag: str, since: str, until: str) -> RunFilter:
    """The search form's words, tags (`tenant=acme`, several separated by spaces) and
    dates (or RFC 3339 times, or spans like 24h) as the store's filter."""
    now = time.time()
    bounds: dict[str, float | None] = {}
    for name, given in (("since", since), ("until", until)):
        try:
            bounds[name] = (
                parse_moment(given, now=now, end=name == "until") if given.strip() else None
            )
        except ValueError as error:
            raise SearchError(name, str(error)) from None
    return RunFilter(q.strip(), parse_tags(tag.split()), bounds["since"], bounds["until"])


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request, who: Reader) -> Response:
    db = _service(request).db
    run = get_run(db, run_id)
    check(who, Permission.READ, run.agent)
    steps, totals = build_timeline(run, read_journal(db, run_id))
    tree = tree_of(db, run_id)  # a run that delegated nothing is a tree of one
    # what this run waits on: its own requests, and those of the runs it delegated to
    below = tree.subtree()
    pending = [a for a in list_approvals(db, "pending", 1000) if a.run_id in below]
    readable = [r for r in tree.nodes if authorize(who, Permission.READ, r.agent).allowed]
    return page(
        request, "run.html", who, section="runs", run=run, steps=steps, totals=totals,
        pending_here=pending, live=run.status not in TERMINAL, tree=tree, tree_rows=readable,
    )  # fmt: skip


@router.post("/runs/{run_id}/cancel")
async def cancel_run(
    run_id: str,
    request: Request,
    who: Actor,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service = _service(request)
    run = get_run(service.db, run_id)
    check(who, Permission.CANCEL_RUN, run.agent)
    back = f"{PREFIX}/runs/{run_id}"
    if not reason.strip():
        return redirect(back, "Say why you cancel the run (the reason is audited).", "error")
    try:
        await service.cancel(run_id, by=who.label, reason=reason.strip())
    except NotFoundError:
        raise
    except StewardError as exc:  # already finished (409), or not cancellable here
        return redirect(back, f"Not cancelled: {exc}.", "error")
    return redirect(back, "Run cancelled.")
