"""Every error leaves the API as JSON: `{"error": {"code", "message", "fields"?}}`, with a
4xx status for anything the caller can fix; never a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from steward.core.errors import (
    ConflictError,
    NotFoundError,
    SpecError,
    StewardError,
)

log = logging.getLogger("steward.server")


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
    if isinstance(exc, ConflictError) or exc.code == "agent.disabled":
        return 409
    if isinstance(exc, SpecError):
        return 422
    return 400


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(StewardError)
    async def steward_error(_request: Request, exc: StewardError) -> JSONResponse:
        code = exc.code if exc.code != "steward.error" else "request.rejected"
        return JSONResponse(error_body(code, str(exc)), status_code=_steward_status(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            error_body("request.invalid", summary or "invalid request", fields=fields),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route.not_found", 405: "method.not_allowed"}.get(exc.status_code, "http")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.error("unhandled error %s: %r", reference, exc, exc_info=exc)
        return JSONResponse(
            error_body("internal.error", f"internal error (reference {reference} in the log)"),
            status_code=500,
        )
