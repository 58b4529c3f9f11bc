"""A small OpenID Connect provider for the single sign-on tests, served by uvicorn on
loopback: discovery, authorize (signs in whoever `person` says, no login form), token
(checks the client's secret, the redirect URI and the PKCE verifier) and JWKS. ID tokens
are RS256, signed with joserfc. `tamper` bends one thing in the next ID tokens (a wrong
audience, nonce or issuer, an old expiry, a foreign signing key) to test the failures."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "steward-console"
CLIENT_SECRET = "s3cret-for-tests"
KID = "test-key-1"


@dataclass
class Provider:
    issuer: str = ""
    person: dict[str, Any] = field(default_factory=dict)  # the claims of who signs in next
    tamper: dict[str, Any] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    # -- endpoints -------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.tamper.get("discovery_issuer", self.issuer),
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorize_requests.append(query)
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**query, "person": dict(self.person)}
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code is used once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect"}, 400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.decode().rstrip("=") != grant["code_challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
            }
        )

    def id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.get("nonce"),
            **grant["person"],
        }
        for name in ("iss", "aud", "azp", "nonce", "exp", "iat"):
            if name in self.tamper:
                claims[name] = self.tamper[name]
        key = self.tamper.get("signing_key", self.key)
        return jwt.encode({"alg": "RS256", "kid": KID}, claims, key)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(app: Any, sock: socket.socket, timeout: float = 20.0) -> Iterator[None]:
    """Serve `app` on `sock` in a thread until the block ends (bounded start and stop)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the server did not stop within 15 s"


@contextmanager
def running_provider(host: str = "127.0.0.1") -> Iterator[Provider]:
    """The provider on a free loopback port for the duration of the block; `host` names
    it in its issuer (`localhost` makes it another site than 127.0.0.1 for a browser)."""
    sock = free_socket()
    provider = Provider(issuer=f"http://{host}:{sock.getsockname()[1]}")
    with serving(provider.app(), sock):
        yield provider
