"""How a gateway is configured: where people decide, how long a call may wait for them,
and (optionally) which OAuth issuer's JWTs it accepts besides steward agent keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JwtIssuer:
    """JWTs of an OAuth authorization server, checked against its JWKS (signature,
    `iss`, `aud`, `exp`). The claim `agent_claim` names the agent spec that governs the
    caller (or `default_agent` when the token has none); `sub` is who the caller is.
    `resource` is this gateway's URL: the audience tokens must carry, and the resource
    named in /.well-known/oauth-protected-resource."""

    issuer: str
    jwks_url: str
    resource: str
    audience: str | None = None  # default: `resource`
    agent_claim: str = "steward_agent"
    default_agent: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    scopes: tuple[str, ...] = ()  # scopes every token must carry


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """`hold_seconds`: how long a call that needs a person's approval is held open (with
    progress notifications) before the gateway answers that it awaits approval; 0 answers
    at once. `decide_url`: the base URL of the steward server where people decide, e.g.
    `https://steward.example` (the console's page `/console/approvals/{id}`, the API's
    `POST /v1/approvals/{id}/decision`); without it the answer names the CLI.
    `calls_per_run`: a caller's calls are recorded in one run of its agent, which is
    finished and replaced after this many. `auth_cache_seconds`: how long a checked
    key is trusted before the store is asked again (a revoked key stops working within
    this time)."""

    hold_seconds: float = 0.0
    decide_url: str | None = None
    calls_per_run: int = 100
    auth_cache_seconds: float = 2.0
    jwt: JwtIssuer | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.hold_seconds <= 300.0:
            raise ValueError("hold_seconds must be between 0 and 300")
        if self.calls_per_run < 1:
            raise ValueError("calls_per_run must be at least 1")
        if self.auth_cache_seconds < 0:
            raise ValueError("auth_cache_seconds must be >= 0")
