"""Runs: start, list (filters, cursor pages), get, tree, cancel, events, feedback."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from steward.security.keys import Permission, Principal, authorize
from steward.server.api._common import (
    EventId,
    Timestamp,
    decode_cursor,
    encode_cursor,
    service_of,
)
from steward.server.auth import check, principal, scoped_reader
from steward.server.errors import ApiError
from steward.server.run_tree import tree_of
from steward.server.schemas import (
    CancelRun,
    EventOut,
    Feedback,
    RunOut,
    RunPage,
    RunTreeOut,
    StartRun,
)
from steward.store.audit import query_events
from steward.store.feedback import give_feedback
from steward.store.runs import get_run, list_runs
from steward.store.search import RunFilter, SearchError, parse_tags

router = APIRouter(prefix="/v1/runs", tags=["runs"])
STATUSES = "queued|running|waiting|succeeded|failed|escalated|cancelled"


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut)
async def start_run(
    body: StartRun, request: Request, who: Principal = Depends(principal)
) -> RunOut:
    """Start a run of a loaded agent; it proceeds in the background (poll it, or follow
    `/v1/runs/{id}/stream`)."""
    check(who, Permission.START_RUN, body.agent)
    service = service_of(request)
    tags = {**body.tags, **who.starter_tags()}
    run_id = await service.start(body.agent, body.input, tags, body.label)
    # a queued run (every slot of its agent taken) is on record too, with status `queued`
    return RunOut.of(await asyncio.to_thread(get_run, service.db, run_id))


@router.get("", response_model=RunPage)
def list_runs_route(
    request: Request,
    who: Principal = Depends(scoped_reader),
    agent: str | None = None,
    state: Annotated[str | None, Query(alias="status", pattern=f"^({STATUSES})$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    search: Annotated[str | None, Query(description="Words in the input or answer.")] = None,
    tag: Annotated[list[str] | None, Query(description="key=value, repeatable.")] = None,
    since: Timestamp = None,
    until: Timestamp = None,
) -> Response:
    """Runs, newest first: words in the input or answer (`search`, every word a prefix),
    tags (`tag=tenant=acme`, repeatable) and a creation-time range (`since`, `until`).
    An agent key sees only its own agent's runs."""
    if who.agent is not None:
        check(who, Permission.READ, agent or who.agent)
        agent = who.agent
    before, before_id = decode_cursor(cursor) if cursor else (None, None)
    try:
        wanted = RunFilter(search or "", parse_tags(tag or []), since, until)
    except SearchError as error:
        raise ApiError(422, "request.invalid", f"query.{error.field}: {error.message}") from None
    rows = list_runs(
        service_of(request).db, agent=agent, status=state, limit=limit + 1,
        before=before, before_id=before_id, where=wanted,
    )  # fmt: skip
    page = rows[:limit]
    more = len(rows) > limit
    body = RunPage(
        items=[RunOut.of(r) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )
    # Already a validated model: serialised once here rather than dumped, validated
    # again and encoded by FastAPI's response_model path (which doubled this route's cost).
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/{run_id}", response_model=RunOut)
def get_run_route(run_id: str, request: Request, who: Principal = Depends(principal)) -> RunOut:
    row = get_run(service_of(request).db, run_id)
    check(who, Permission.READ, row.agent)
    return RunOut.of(row)


@router.get("/{run_id}/tree", response_model=RunTreeOut)
def get_run_tree(run_id: str, request: Request, who: Principal = Depends(principal)) -> RunTreeOut:
    """The delegation tree the run belongs to: its root, every run below it depth first
    (a run, then the runs it delegated to) and the chain from the root to this run. A
    run that delegated nothing is a tree of one."""
    tree = tree_of(service_of(request).db, run_id)
    check(who, Permission.READ, tree.run.agent)

    def readable(agent: str) -> bool:
        return authorize(who, Permission.READ, agent).allowed

    return RunTreeOut(
        run_id=tree.run.id,
        root_run_id=tree.root.id,
        chain=[r.id for r in tree.chain if readable(r.agent)],
        runs=[RunOut.of(r) for r in tree.nodes if readable(r.agent)],
    )


@router.get("/{run_id}/events", response_model=list[EventOut])
def run_events(
    run_id: str,
    request: Request,
    who: Principal = Depends(principal),
    after_id: EventId = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[EventOut]:
    """The run's journal: model turns, proposed calls, decisions, approvals, results."""
    db = service_of(request).db
    row = get_run(db, run_id)
    check(who, Permission.READ, row.agent)
    entries = query_events(db, run_id=run_id, after_id=after_id, limit=limit)
    return [EventOut.of(e) for e in entries]


@router.post("/{run_id}/cancel", response_model=RunOut)
async def cancel_run_route(
    run_id: str, body: CancelRun, request: Request, who: Principal = Depends(principal)
) -> RunOut:
    """Cancel a run that has not finished (409 if it has)."""
    service = service_of(request)
    row = await asyncio.to_thread(get_run, service.db, run_id)
    check(who, Permission.CANCEL_RUN, row.agent)
    return RunOut.of(await service.cancel(run_id, by=who.label, reason=body.reason))


@router.post("/{run_id}/feedback", status_code=status.HTTP_201_CREATED)
def feedback(
    run_id: str, body: Feedback, request: Request, who: Principal = Depends(principal)
) -> dict[str, str]:
    """Judge a finished run's output; `incorrect` needs a correction. Feeds the accuracy
    figure of `steward stats`."""
    service = service_of(request)
    row = get_run(service.db, run_id)
    check(who, Permission.GIVE_FEEDBACK, row.agent)
    give_feedback(
        service.db, run_id, verdict=body.verdict, by=who.label, correction=body.correction,
        comment=body.comment, on_commit=service.journal.publish,
    )  # fmt: skip
    return {"run_id": run_id, "verdict": body.verdict}
