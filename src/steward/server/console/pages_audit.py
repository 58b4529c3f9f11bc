"""The audit view: recent events of the hash chain (by run, type prefix and time range,
older pages) with who acted and the full event on expand; the filtered range exported
(JSONL or CSV, the code path of `steward audit export`); verifying the whole chain."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from steward.core.times import parse_moment
from steward.security.keys import Permission
from steward.server.auth import check
from steward.server.console.render import PREFIX, page
from steward.server.console.session import Reader
from steward.server.errors import ApiError
from steward.server.service import RunService
from steward.store.audit import EXPORT_FORMATS, export_lines, recent_events
from steward.store.chain import VerifyReport, verify_chain

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50


def _bounds(since: str, until: str) -> tuple[float | None, float | None]:
    """The form's range (dates, RFC 3339 times or spans like 24h); 422 naming the field."""
    now = time.time()
    found: dict[str, float | None] = {}
    for name, given in (("since", since), ("until", until)):
        try:
            found[name] = (
                parse_moment(given, now=now, end=name == "until") if given.strip() else None
            )
        except ValueError as error:
            raise ApiError(422, "request.invalid", f"query.{name}: {error}") from None
    return found["since"], found["until"]


def _audit(
    request: Request, who: Reader, run_id: str, type: str, before_id: int | None,
    report: VerifyReport | None = None, since: str = "", until: str = "",
) -> Response:  # fmt: skip
    service: RunService = request.app.state.service
    start, end = _bounds(since, until)
    entries = recent_events(
        service.db, run_id=run_id.strip() or None, type_prefix=type.strip() or None,
        before_id=before_id, since=start, until=end, limit=PAGE_SIZE,
    )  # fmt: skip
    filters = {k: v for k, v in (("run_id", run_id), ("type", type), ("since", since),
                                 ("until", until)) if v}  # fmt: skip
    older = None
    if len(entries) == PAGE_SIZE:
        older = "?" + urlencode({**filters, "before_id": entries[-1].id})
    return page(
        request, "audit.html", who, section="audit", entries=entries, run_id=run_id,
        type=type, older=older, newest="?" + urlencode(filters) if before_id else None,
        report=report, since=since, until=until, filtered=bool(filters),
        export="?" + urlencode(filters) if filters else "",
    )  # fmt: skip


@router.get("/audit")
def audit_page(
    request: Request,
    who: Reader,
    run_id: str = "",
    type: str = "",
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: str = "",
    until: str = "",
) -> Response:
    return _audit(request, who, run_id, type, before_id, since=since, until=until)


@router.get("/audit/export.{fmt}")
def export(
    fmt: str, request: Request, who: Reader, run_id: str = "", type: str = "", since: str = "",
    until: str = "",
) -> Response:  # fmt: skip
    """The filtered range as a download, through the same code as `steward audit export`."""
    check(who, Permission.READ)
    if fmt not in EXPORT_FORMATS:
        raise ApiError(404, "route.not_found", f"no export as {fmt!r}: jsonl or csv")
    start, end = _bounds(since, until)
    service: RunService = request.app.state.service
    lines = export_lines(service.db, fmt, run_id=run_id.strip() or None,
                         type_prefix=type.strip() or None, since=start, until=end)  # fmt: skip
    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    name = f"steward-audit-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{fmt}"
    return StreamingResponse(
        iterate_in_threadpool(lines), media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


@router.get("/audit/verify")
def verify_page(
    request: Request, who: Reader, run_id: str = "", type: str = "", since: str = "",
    until: str = "",
) -> Response:  # fmt: skip
    """Recompute the whole chain (reading only, so a GET) and show the verdict."""
    check(who, Permission.VERIFY_AUDIT)
    service: RunService = request.app.state.service
    with service.db.reader.connect() as connection:
        report = verify_chain(connection)
    return _audit(request, who, run_id, type, None, report, since=since, until=until)
