"""Who is calling, and may they? Every API route depends on `principal`; the console signs
in with a key and then carries a session cookie (HttpOnly, SameSite=Strict)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from steward.core.decision import Verdict
from steward.security.keys import Permission, Principal, authorize
from steward.server.errors import ApiError
from steward.store.keys import authenticate_token, session_principal

SESSION_COOKIE = "steward_session"


def principal_from(request: Request) -> Principal | None:
    """The caller named by a Bearer key, or by a console session cookie."""
    db = request.app.state.service.db
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return authenticate_token(db, token.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return session_principal(db, cookie)
    return None


def principal(request: Request) -> Principal:
    found = principal_from(request)
    if found is None:
        raise ApiError(
            401,
            "auth.unauthenticated",
            "send a valid API key as `Authorization: Bearer stw_...`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def check(who: Principal, permission: Permission, agent: str | None = None) -> None:
    """Raise 403 with the reason unless `who` may do `permission` (on `agent`)."""
    decision = authorize(who, permission, agent)
    if decision.verdict is not Verdict.ALLOW:
        reason = decision.reasons[0]
        raise ApiError(403, reason.code, reason.message)


def requires(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency for routes not scoped to one agent: agent keys are refused."""

    async def dependency(who: Principal = Depends(principal)) -> Principal:  # no I/O: no thread
        check(who, permission)
        return who

    return dependency


async def scoped_reader(who: Principal = Depends(principal)) -> Principal:
    """Anyone who may read; agent keys read only their own agent's resources (the route
    filters or checks with `check(who, Permission.READ, agent)`)."""
    check(who, Permission.READ, who.agent)
    return who
