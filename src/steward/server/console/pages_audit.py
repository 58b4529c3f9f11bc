"""The audit view: recent events of the hash chain (by run, by type prefix, older pages),
and verifying the whole chain."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from steward.security.keys import Permission
from steward.server.auth import check
from steward.server.console.render import PREFIX, page
from steward.server.console.session import Reader
from steward.server.service import RunService
from steward.store.audit import recent_events
from steward.store.chain import VerifyReport, verify_chain

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 50


def _audit(
    request: Request, who: Reader, run_id: str, type: str, before_id: int | None,
    report: VerifyReport | None = None,
) -> Response:  # fmt: skip
    service: RunService = request.app.state.service
    entries = recent_events(
        service.db, run_id=run_id.strip() or None, type_prefix=type.strip() or None,
        before_id=before_id, limit=PAGE_SIZE,
    )  # fmt: skip
    filters = {k: v for k, v in (("run_id", run_id), ("type", type)) if v}
    older = None
    if len(entries) == PAGE_SIZE:
        older = "?" + urlencode({**filters, "before_id": entries[-1].id})
    return page(
        request, "audit.html", who, section="audit", entries=entries, run_id=run_id,
        type=type, older=older, newest="?" + urlencode(filters) if before_id else None,
        report=report,
    )  # fmt: skip


@router.get("/audit")
def audit_page(
    request: Request,
    who: Reader,
    run_id: str = "",
    type: str = "",
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    return _audit(request, who, run_id, type, before_id)


@router.get("/audit/verify")
def verify_page(request: Request, who: Reader, run_id: str = "", type: str = "") -> Response:
    """Recompute the whole chain (reading only, so a GET) and show the verdict."""
    check(who, Permission.VERIFY_AUDIT)
    service: RunService = request.app.state.service
    with service.db.reader.connect() as connection:
        report = verify_chain(connection)
    return _audit(request, who, run_id, type, None, report)
