"""Templates, their filters, flash messages and the console's friendly error pages."""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import URL

from steward.core.times import rfc3339, rfc3339_or_none
from steward.security.keys import Permission, Principal, authorize
from steward.store.approvals import list_approvals

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
FLASH_COOKIE = "steward_flash"
PREFIX = "/console"

# Status (of a run, an approval, a verdict) -> the colour family of its pill.
TONES: dict[str, str] = {
    "queued": "grey", "running": "blue", "waiting": "amber", "succeeded": "green",
    "failed": "red", "escalated": "orange", "cancelled": "grey",
    "pending": "amber", "approved": "green", "rejected": "red", "expired": "grey",
    "allow": "green", "review": "amber", "deny": "red", "transform": "blue",
    "enabled": "green", "disabled": "red", "advisory": "blue", "supervised": "amber",
    "autonomous": "orange", "ok": "green", "broken": "red",
    "pinned": "green", "quarantined": "red",
}  # fmt: skip
TERMINAL = frozenset({"succeeded", "failed", "escalated", "cancelled"})


def tone(status: str) -> str:
    return TONES.get(status, "grey")


def utc(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ts: float | None, now: float | None = None) -> str:
    """'12 s ago', '5 min ago', 'in 58 min' — a person's sense of a moment."""
    if ts is None:
        return "—"
    delta = (time.time() if now is None else now) - ts
    future = delta < 0
    seconds = abs(delta)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def millis(ms: float | None) -> str:
    return "—" if ms is None else (f"{ms:.2f} ms" if ms < 10 else f"{ms:,.0f} ms")


def usd(amount: float | None) -> str:
    if amount is None:
        return "—"
    return f"${amount:.4f}" if 0 < amount < 0.01 else f"${amount:,.2f}"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def absolute(ts: float | None) -> str:
    """RFC 3339 with its zone (core/times.py), for a time's hover title."""
    return "—" if ts is None else f"{rfc3339(ts)} (UTC)"


TEMPLATES.env.filters.update(
    tone=tone, utc=utc, ago=ago, duration=duration, millis=millis, usd=usd, pretty=pretty,
    compact=compact, rfc3339=rfc3339_or_none, absolute=absolute,
)  # fmt: skip


# -- flash messages: one short message carried across a POST -> 303 redirect ------------


def set_flash(response: Response, message: str, kind: str = "ok") -> None:
    """`kind`: ok (green), error (red) or info (blue)."""
    raw = json.dumps({"m": message[:500], "k": kind}).encode()
    value = base64.urlsafe_b64encode(raw).decode().rstrip("=")  # no quoting needed
    response.set_cookie(FLASH_COOKIE, value, httponly=True, samesite="strict", path=PREFIX)


def take_flash(request: Request) -> dict[str, str] | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return {"message": str(found["m"]), "kind": str(found.get("k", "info"))}
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def redirect(url: str | URL, flash: str | None = None, kind: str = "ok") -> RedirectResponse:
    response = RedirectResponse(str(url), status_code=303)
    if flash:
        set_flash(response, flash, kind)
    return response


# -- pages ----------------------------------------------------------------------------


def pending_count(request: Request) -> int:
    return len(list_approvals(request.app.state.service.db, "pending", 1000))


def page(
    request: Request,
    template: str,
    who: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a console page: the nav (identity, pending count), the flash, `context`."""

    def can(permission: str) -> bool:
        return who is not None and authorize(who, Permission(permission)).allowed

    flash = context.pop("flash", None) or take_flash(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "can": can,
            "flash": flash,
            "pending": pending_count(request) if who is not None else 0,
            "section": context.pop("section", ""),
            **context,
        },
        status_code=status_code,
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    response.headers["Cache-Control"] = "no-store"
    return response


TITLES = {
    400: "That request could not be handled",
    403: "You don't have access to this",
    404: "Not found",
    405: "Not allowed",
    409: "That changed in the meantime",
    422: "Something in the request was not valid",
    500: "Something went wrong on our side",
}


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """The console's answer to any error: sign in again (401), or a friendly page."""
    if status == 401:
        target = request.url.path if request.method == "GET" else f"{PREFIX}/runs"
        return redirect(f"{PREFIX}/sign-in?next={target}")
    from steward.server.console.session import current_principal  # avoids an import cycle

    try:
        who = current_principal(request)
    except Exception:  # the error page must render even when the store is unwell
        who = None
    title = TITLES.get(status, "Something went wrong")
    if code == "route.not_found":
        message = f"There is no console page at {request.url.path}."
    try:
        return page(
            request, "error.html", who, status_code=status, title=title, code=code,
            message=message, status=status,
        )  # fmt: skip
    except Exception:
        return page(
            request, "error.html", None, status_code=status, title=title, code=code,
            message=message, status=status,
        )  # fmt: skip
