"""JWTs from a configured OAuth issuer, checked against its JWKS (served here on
loopback), and the protected-resource metadata the MCP authorization spec asks for."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .served import GatewayProcess, free_port, make_gateway


class Issuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": "ana@example.com", "iat": now, "exp": now + 300,
                "steward_agent": "mcp-desk", **claims}  # fmt: skip
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = found.jwks.encode()
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", found.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def oauth_gateway(tmp_path: Path, issuer: Issuer) -> Iterator[GatewayProcess]:
    gw = make_gateway(tmp_path)
    gw.extra = ("--jwt-issuer", issuer.url, "--jwt-jwks-url", f"{issuer.url}/jwks",
                "--jwt-resource", gw.url)  # fmt: skip
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


async def test_a_jwt_of_the_issuer_selects_its_agent(
    oauth_gateway: GatewayProcess, issuer: Issuer
) -> None:
    gw = oauth_gateway
    gw.tokens["ana"] = issuer.token(aud=gw.url)
    async with gw.client("ana") as client:
        assert sorted(t.name for t in (await client.list_tools()).tools) == [
            "echo",
            "note",
            "refund",
        ]
        done = await client.call_tool("note", {"text": "via oauth"})
        waiting = await client.call_tool("refund", {"order_id": "j-1", "amount_usd": 3})
    assert not done.is_error and gw.effects("note") == [{"tool": "note", "text": "via oauth"}]
    assert waiting.structured_content["status"] == "awaiting_approval"
    # the steward agent keys keep working beside the issuer's tokens
    async with gw.client("reader") as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["echo"]


async def test_bad_jwts_get_401_pointing_at_the_resource_metadata(
    oauth_gateway: GatewayProcess, issuer: Issuer
) -> None:
    gw = oauth_gateway
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "wrong audience": issuer.token(aud="http://elsewhere.example/mcp"),
        "expired": issuer.token(aud=gw.url, exp=int(time.time()) - 60),
        "unknown agent": issuer.token(aud=gw.url, steward_agent="nobody"),
        "no agent": issuer.token(aud=gw.url, steward_agent=None),
        "another key": issuer.token(stranger, aud=gw.url),
        "another issuer": issuer.token(aud=gw.url, iss="http://evil.example"),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    metadata_url = f"{gw.base}/.well-known/oauth-protected-resource/mcp"
    async with httpx2.AsyncClient(timeout=10) as http:
        for why, token in bad.items():
            response = await http.post(
                gw.url,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json, text/event-stream",
                },
            )
            assert response.status_code == 401, why
            assert f'resource_metadata="{metadata_url}"' in response.headers["www-authenticate"]
        metadata = (await http.get(metadata_url)).json()
    assert metadata["resource"] == gw.url
    assert metadata["authorization_servers"] == [issuer.url]
