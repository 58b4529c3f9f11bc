"""The operator console under /console: server-rendered pages (Jinja2), plain forms that
POST and redirect (303), a little vanilla JS, no network assets.

Pages: sign-in, runs, a run's timeline, the approval queue, audit, agents, overview
(fleet and per agent). Each page
module has its own router; `router` here gathers them.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from steward.server.console import (
    pages_agents,
    pages_approvals,
    pages_audit,
    pages_overview,
    pages_runs,
    session,
)
from steward.server.console.render import HERE, PREFIX, error_page

STATIC = HERE / "static"
router = APIRouter(include_in_schema=False)
for _module in (session, pages_runs, pages_approvals, pages_audit, pages_agents):
    router.include_router(_module.router)
router.include_router(pages_overview.router)

__all__ = ["PREFIX", "error_page", "router", "static_files"]


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def home() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/runs", status_code=303)
