"""Who calls the gateway: a steward agent key (`Authorization: Bearer stw_...`), or a JWT
from the configured OAuth issuer checked against its JWKS. Either way the caller is a
steward Principal with the agent role, scoped to the one agent whose spec governs it.

The MCP SDK's bearer middleware asks `verify_token`; an unknown, revoked, expired or
person's token is refused (401 with `WWW-Authenticate`)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from steward.gateway.config import JwtIssuer
from steward.security.keys import Principal, Role
from steward.store.database import Database
from steward.store.keys import authenticate_token

_CLAIM = "steward"  # where the AccessToken carries the caller's principal


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    via: str  # "key" | "jwt"

    @property
    def agent(self) -> str:
        assert self.principal.agent is not None
        return self.principal.agent


def caller_of(user: object) -> Caller | None:
    """The caller the bearer middleware authenticated (the request scope's `user`)."""
    if not isinstance(user, AuthenticatedUser):
        return None
    claims = user.access_token.claims or {}
    found = claims.get(_CLAIM)
    if not isinstance(found, dict):
        return None
    principal = Principal(
        found["key_id"], found["principal_id"], found["name"], Role.AGENT, found["agent"]
    )
    return Caller(principal, found["via"])


def _token(principal: Principal, via: str, token: str, **extra: Any) -> AccessToken:
    carried = {
        "key_id": principal.key_id,
        "principal_id": principal.principal_id,
        "name": principal.name,
        "agent": principal.agent,
        "via": via,
    }
    return AccessToken(
        token=token,
        client_id=principal.name,
        scopes=list(extra.pop("scopes", [])),
        subject=principal.principal_id,
        claims={_CLAIM: carried, **extra},
        expires_at=extra.get("exp"),
    )


class StewardTokenVerifier:
    """The MCP SDK's TokenVerifier over steward's keys (and an issuer's JWTs). A checked
    key is remembered for `cache_seconds` (by the SHA-256 of the token), so a busy client
    does not cost a store read per request; revocation takes effect within that time."""

    def __init__(
        self,
        db: Database,
        agents: set[str],
        *,
        jwt: JwtIssuer | None = None,
        cache_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.agents = agents
        self.jwt = JwtVerifier(jwt) if jwt is not None else None
        self.cache_seconds = cache_seconds
        self._seen: dict[str, tuple[float, AccessToken | None]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        token = token.strip()
        if token.startswith("stw_"):
            return await self._key(token)
        if self.jwt is not None and token.count(".") == 2:
            return await asyncio.to_thread(self.jwt.verify, token, self.agents)
        return None

    async def _key(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._seen.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await asyncio.to_thread(authenticate_token, self.db, token)
        answer: AccessToken | None = None
        # an agent key governs its own agent; a person's key names no agent to act as
        if (
            principal is not None
            and principal.role is Role.AGENT
            and principal.agent in self.agents
        ):
            answer = _token(principal, "key", "")
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[digest] = (now + self.cache_seconds, answer)
        return answer


class JwtVerifier:
    """Signature (by the issuer's JWKS), issuer, audience and expiry of a JWT."""

    def __init__(self, issuer: JwtIssuer) -> None:
        import jwt

        self.issuer = issuer
        self._jwks = jwt.PyJWKClient(issuer.jwks_url, cache_keys=True, lifespan=300)

    def verify(self, token: str, agents: set[str]) -> AccessToken | None:
        import jwt

        issuer = self.issuer
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(issuer.algorithms),
                audience=issuer.audience or issuer.resource,
                issuer=issuer.issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except (jwt.PyJWTError, OSError, ValueError):
            return None
        agent = claims.get(issuer.agent_claim, issuer.default_agent)
        if not isinstance(agent, str) or agent not in agents:
            return None
        scopes = str(claims.get("scope", "")).split()
        if any(s not in scopes for s in issuer.scopes):
            return None
        subject = str(claims["sub"])
        principal = Principal(
            "jwt", f"jwt:{subject}@{issuer.issuer}", f"{subject}@{issuer.issuer}", Role.AGENT, agent
        )
        return _token(principal, "jwt", "", scopes=scopes, exp=int(claims["exp"]))
