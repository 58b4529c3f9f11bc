"""Signing in and out of the console, who is signed in, and the same-origin check.

A person signs in by pasting an API key, or by single sign-on (console/sso.py); the
console opens a session and carries it in the `steward_session` cookie (HttpOnly, Secure
over https; SameSite=Strict for a key, Lax after SSO, whose redirect back is cross-site). Agent keys
may not sign in: the console is for people. Every state-changing POST must come from the
console itself: its `Origin` (or, without one, its `Referer`) must name this host.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from steward.security.keys import Permission, Principal, Role
from steward.server.auth import SESSION_COOKIE, check
from steward.server.console.render import PREFIX, page, redirect
from steward.server.errors import ApiError
from steward.store.keys import SESSION_SECONDS, authenticate_token, close_session, open_session
from steward.store.keys import session_principal as stored_session

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def current_principal(request: Request) -> Principal | None:
    """The person of this request's console session (never an agent), or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = stored_session(request.app.state.service.db, token)
    return None if found is None or found.role is Role.AGENT else found


def reader(request: Request) -> Principal:
    """A signed-in person who may read; otherwise the error page sends them to sign in."""
    who = current_principal(request)
    if who is None:
        raise ApiError(401, "auth.unauthenticated", "sign in to use the console")
    check(who, Permission.READ)
    return who


def same_origin(request: Request) -> None:
    """Refuse (403) a POST whose Origin, or Referer when Origin is absent, is not us."""
    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    if not claimed or claimed == "null" or urlsplit(claimed).netloc.lower() != host.lower():
        raise ApiError(
            403,
            "console.cross_origin",
            "this form was not sent from the console (its Origin does not match this host); "
            "reload the page and try again",
        )


def actor(request: Request, _: None = Depends(same_origin)) -> Principal:
    """A signed-in person sending a form from the console itself."""
    return reader(request)


Reader = Annotated[Principal, Depends(reader)]
Actor = Annotated[Principal, Depends(actor)]


def sso_enabled(request: Request) -> bool:
    """Whether this server offers single sign-on (see console/sso.py)."""
    return getattr(request.app.state, "sso", None) is not None


def safe_next(target: str | None) -> str:
    """Only console paths are followed after signing in (no open redirects)."""
    if (
        target
        and target.startswith(f"{PREFIX}/")
        and "\\" not in target
        and not target.startswith(f"{PREFIX}/sign-")
    ):
        return target
    return f"{PREFIX}/runs"


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    who = current_principal(request)
    if who is not None:
        return redirect(safe_next(next))
    return page(request, "sign_in.html", None, next=safe_next(next), sso=sso_enabled(request))


@router.post("/sign-in", dependencies=[Depends(same_origin)])
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    db = request.app.state.service.db
    found = authenticate_token(db, token.strip()) if token.strip() else None
    error = None
    if found is None:
        error = "That key is not valid: it may be mistyped, unknown or revoked."
    elif found.role is Role.AGENT:
        error = "Agent keys cannot sign in to the console. Use a person's key (admin, reviewer or viewer)."
    if found is None or error is not None:
        return page(
            request, "sign_in.html", None, status_code=403 if found else 401,
            next=safe_next(next), error=error, sso=sso_enabled(request),
        )  # fmt: skip
    response = redirect(safe_next(next), f"Signed in as {found.name} ({found.role}).")
    response.set_cookie(
        SESSION_COOKIE,
        open_session(db, found),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/sign-out", dependencies=[Depends(same_origin)])
def sign_out(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_session(request.app.state.service.db, token)
    response = redirect(f"{PREFIX}/sign-in", "Signed out.", "info")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
