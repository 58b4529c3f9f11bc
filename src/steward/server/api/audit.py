"""Audit: query the hash-chained event log, and verify it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from steward.security.keys import Permission, Principal
from steward.server.api._common import EventId, Timestamp, service_of
from steward.server.auth import requires
from steward.server.schemas import AuditPage, EventOut, VerifyOut
from steward.store.audit import query_events
from steward.store.chain import verify_chain

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/events", response_model=AuditPage)
def audit_events(
    request: Request,
    who: Principal = Depends(requires(Permission.READ)),
    run_id: str | None = None,
    type: Annotated[
        str | None, Query(description="An event type, or a prefix such as `approval.`")
    ] = None,
    since: Timestamp = None,
    until: Timestamp = None,
    after_id: EventId = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Events in chain order; page with `after_id` = the previous page's `next_after_id`."""
    entries = query_events(
        service_of(request).db, run_id=run_id, type_prefix=type, since=since, until=until,
        after_id=after_id, limit=limit,
    )  # fmt: skip
    return AuditPage(
        items=[EventOut.of(e) for e in entries],
        next_after_id=entries[-1].id if len(entries) == limit else None,
    )


@router.post("/verify", response_model=VerifyOut)
def verify(
    request: Request, who: Principal = Depends(requires(Permission.VERIFY_AUDIT))
) -> VerifyOut:
    """Recompute the whole chain; `ok` is false with every break listed."""
    with service_of(request).db.reader.connect() as connection:
        report = verify_chain(connection)
    return VerifyOut(
        ok=report.ok,
        checked=report.checked,
        head_hash=report.head_hash,
        problems=[{"event_id": p.event_id, "problem": p.problem} for p in report.problems],
    )
