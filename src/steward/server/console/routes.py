"""The operator console under /console: server-rendered pages (Jinja2), plain forms that
POST and redirect (303), a little vanilla JS, no network assets.

Pages: sign-in (a key, or single sign-on), runs, a run's timeline, the approval queue, audit,
agents, an agent's drift monitors, overview (fleet and per agent). Each page
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
    pages_monitors,
    pages_overview,
    pages_runs,
    session,
    sso,
)
from steward.server.console.render import HERE, PREFIX, error_page

STATIC = HERE / "static"
router = APIRouter(include_in_schema=False)
for _module in (
    session,
    sso,
    pages_runs,
    pages_approvals,
    pages_audit,
    pages_agents,
    pages_monitors,
    pages_overview,
):
    router.include_router(_module.router)

__all__ = ["PREFIX", "error_page", "router", "static_files"]


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def home() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/runs", status_code=303)
