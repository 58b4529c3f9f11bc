"""Every error leaves the API as JSON: `{"error": {"code", "message", "fields"?}}`, with a
4xx status for anything the caller can fix and a 5xx for the server's own faults (a store
that is unavailable is 503 `store.unavailable` with `Retry-After`); never a traceback. Under a prefix given a page
renderer (the console's `/console`), the same errors leave as friendly HTML pages."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from steward.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    SpecError,
    StewardError,
    StoreError,
    StoreUnavailable,
)
from steward.store.transient import is_transient, unavailable

log = logging.getLogger("steward.server")

# (request, status, code, message) -> the response a person sees instead of JSON
PageRenderer = Callable[[Request, int, str, str], Response]


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _steward_status(exc: StewardError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, ConflictError) or exc.code == "agent.disabled":
        return 409
    if isinstance(exc, SpecError):
        return 422
    if isinstance(exc, StoreUnavailable):
        return 503
    if isinstance(exc, StoreError):  # not found and conflicts are above: the rest is ours
        return 500
    return 400


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


def install_error_handlers(app: FastAPI, pages: dict[str, PageRenderer] | None = None) -> None:
    """JSON errors everywhere, except under the path prefixes of `pages` (HTML)."""
    renderers = dict(pages or {})

    def respond(
        request: Request,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        for prefix, render in renderers.items():
            if request.url.path.startswith(prefix):
                return render(request, status, code, message)
        body = error_body(code, message, **extra)
        return JSONResponse(body, status_code=status, headers=dict(headers or {}) or None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return respond(request, exc.status, exc.code, exc.message, exc.headers)

    def store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        log.warning("503 %s %s: %s", request.method, request.url.path, exc)
        retry_after = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return respond(request, 503, exc.code, str(exc), retry_after)

    @app.exception_handler(StewardError)
    async def steward_error(request: Request, exc: StewardError) -> Response:
        if isinstance(exc, StoreUnavailable):
            return store_unavailable(request, exc)
        status = _steward_status(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        code = exc.code if exc.code != "steward.error" else "request.rejected"
        return respond(request, status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return respond(request, 422, "request.invalid", summary or "invalid request", fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "route.not_found", 405: "method.not_allowed"}.get(exc.status_code, "http")
        return respond(request, exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_transient(exc):  # a read or a write met a store fault: not a bug, not a 4xx
            return store_unavailable(request, unavailable(exc))
        reference = uuid.uuid4().hex[:12]
        log.error("unhandled error %s: %r", reference, exc, exc_info=exc)
        message = f"internal error (reference {reference} in the log)"
        return respond(request, 500, "internal.error", message)
