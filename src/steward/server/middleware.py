"""HTTP hygiene around every route: a cap on request bodies, and browser security headers
(a strict Content-Security-Policy on the console, which has no inline script or style)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steward.server.errors import error_body

MAX_BODY_BYTES = 1 << 20  # 1 MiB: the largest legitimate body (a run's input) is 100k chars

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class HygieneMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): streaming responses such as SSE pass untouched."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send, self.max_body)
            return
        console = str(scope.get("path", "")).startswith("/console")
        seen = 0
        overflow = False  # a body without Content-Length went over the cap while being read
        started = False

        async def capped_receive() -> Message:
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    overflow = True
                    raise _BodyTooLarge
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if overflow:  # the app's answer to a body it could not read (FastAPI says 400)
                return
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.extend(_COMMON)
                if console:
                    headers.append((b"content-security-policy", CONSOLE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, capped_receive, with_headers)
        except Exception:
            if not overflow or started:
                raise
        if overflow and not started:
            await _too_large(send, self.max_body)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:

    body = json.dumps(
        error_body("request.too_large", f"request bodies are limited to {limit} bytes")
    ).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *_COMMON]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
