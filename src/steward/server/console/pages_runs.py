"""Console pages for runs: the list (filters, older pages) and one run's timeline."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from steward.core.errors import NotFoundError, StewardError
from steward.core.events import RunStatus
from steward.security.keys import Permission
from steward.server.api._common import decode_cursor, encode_cursor
from steward.server.api.agents import agents_overview
from steward.server.auth import check
from steward.server.console.render import PREFIX, TERMINAL, page, redirect
from steward.server.console.session import Actor, Reader
from steward.server.console.timeline import build_timeline
from steward.server.service import RunService
from steward.store.approvals import list_approvals
from steward.store.runs import get_run, list_runs, read_journal

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
) -> Response:
    service = _service(request)
    status = status if status in STATUSES else ""
    before, before_id = decode_cursor(cursor) if cursor else (None, None)
    rows = list_runs(
        service.db, agent=agent or None, status=status or None, limit=PAGE_SIZE + 1,
        before=before, before_id=before_id,
    )  # fmt: skip
    shown = rows[:PAGE_SIZE]
    filters = {k: v for k, v in (("agent", agent), ("status", status)) if v}
    older = None
    if len(rows) > PAGE_SIZE:
        last = shown[-1]
        older = "?" + urlencode({**filters, "cursor": encode_cursor(last.created_at, last.id)})
    return page(
        request, "runs.html", who, section="runs", runs=shown, agent=agent, status=status,
        statuses=STATUSES, agents=[a.name for a in agents_overview(service)],
        older=older, newest="?" + urlencode(filters) if cursor else None,
    )  # fmt: skip


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request, who: Reader) -> Response:
    db = _service(request).db
    run = get_run(db, run_id)
    check(who, Permission.READ, run.agent)
    steps, totals = build_timeline(run, read_journal(db, run_id))
    pending = [a for a in list_approvals(db, "pending", 1000) if a.run_id == run_id]
    return page(
        request, "run.html", who, section="runs", run=run, steps=steps, totals=totals,
        pending_here=pending, live=run.status not in TERMINAL,
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
