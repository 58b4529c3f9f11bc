"""Single sign-on for people: OpenID Connect, authorization code flow with PKCE (Authlib).

    GET /console/sso/start?next=...   -> 302 to the IdP's authorization endpoint with
                                         state, nonce and an S256 code challenge
    GET /console/sso/callback         -> code for tokens; the ID token's signature is
                                         checked against the IdP's JWKS, and its issuer,
                                         audience, expiry and nonce; then a session

State, nonce and the PKCE verifier wait in a short-lived cookie (`steward_sso`, signed
by Starlette's SessionMiddleware, HttpOnly, SameSite=Lax, path /console/sso) between
the two requests. The person's groups (`roles_claim`) give their role
(steward.security.sso.role_for); with none mapped they get no session and a page that
says why. The session cookie is the console's `steward_session`, SameSite=Lax here (the
IdP's redirect back is a cross-site navigation, which Strict cookies do not follow).
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from steward.core.errors import ConflictError, InvalidInput
from steward.security.sso import SsoConfig, claim_values, person_name, role_for
from steward.server.auth import SESSION_COOKIE
from steward.server.console.render import PREFIX, page, redirect
from steward.server.console.session import safe_next
from steward.store.keys import SESSION_SECONDS
from steward.store.sso import sign_in

router = APIRouter(prefix=f"{PREFIX}/sso", include_in_schema=False)

FLOW_COOKIE = "steward_sso"
FLOW_SECONDS = 600  # a sign-in must come back from the IdP within 10 minutes
LEEWAY_SECONDS = 60  # clock skew allowed on the ID token's exp/iat/nbf
TIMEOUT_SECONDS = 10.0  # each request to the IdP (discovery, token, JWKS)
_NEXT = "steward_next"


def _network_errors() -> tuple[type[Exception], ...]:
    """What the IdP's client raises when the network fails: Authlib speaks httpx2 (a
    dependency of steward) when installed, else httpx, which may be absent."""
    found: list[type[Exception]] = [httpx2.HTTPError, OSError]
    try:
        import httpx

        found.append(httpx.HTTPError)
    except ImportError:  # pragma: no cover - httpx comes with the dev and test tools
        pass
    return tuple(found)


NETWORK_ERRORS = _network_errors()


class SsoClient:
    """The configured identity provider, through Authlib's Starlette client (imported only
    when single sign-on is configured: it is the optional `sso` extra)."""

    def __init__(self, config: SsoConfig) -> None:
        from authlib.integrations.base_client import OAuthError
        from authlib.integrations.starlette_client import OAuth
        from joserfc.errors import JoseError

        self.config = config
        # what a failed sign-in raises: the flow's errors, the ID token's, the network's
        self.failures: tuple[type[BaseException], ...] = (
            OAuthError, JoseError, *NETWORK_ERRORS, ValueError, KeyError, TypeError,
        )  # fmt: skip
        self.oauth_error: Any = OAuthError
        registry = OAuth()
        self.idp: Any = registry.register(
            name="idp",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.discovery_url,
            client_kwargs={
                "scope": config.scopes,
                "code_challenge_method": "S256",
                "timeout": TIMEOUT_SECONDS,
            },
        )

    def claims_options(self) -> dict[str, Any]:
        """What the ID token must say beyond its signature, expiry and nonce: our issuer,
        and our client among its audiences (Authlib alone checks only the issuer, and the
        audience only through `azp`)."""
        return {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
        }

    async def metadata(self) -> dict[str, Any]:
        """The IdP's discovery document; its issuer must be the configured one exactly
        (OpenID Connect Discovery §4.3), so the ID token's `iss` is checked against it."""
        found: dict[str, Any] = await self.idp.load_server_metadata()
        if found.get("issuer") != self.config.issuer:
            raise self.oauth_error(
                error="issuer_mismatch",
                description=f"the discovery document names issuer {found.get('issuer')!r}, "
                f"not {self.config.issuer!r}",
            )
        return found


def install(app: FastAPI, config: SsoConfig) -> None:
    """Enable single sign-on on `app`: the client, and the signed cookie for the flow."""
    try:
        from starlette.middleware.sessions import SessionMiddleware

        client = SsoClient(config)
    except ImportError as exc:
        raise InvalidInput(
            f"single sign-on needs the `sso` extra ({exc.name} is not installed): "
            "pip install 'steward-governance[sso]'"
        ) from None
    app.state.sso = client
    app.add_middleware(
        SessionMiddleware,
        secret_key=config.session_secret or secrets.token_urlsafe(32),
        session_cookie=FLOW_COOKIE,
        max_age=FLOW_SECONDS,
        path=f"{PREFIX}/sso",
        same_site="lax",
        https_only=config.secure_cookies,
    )


def client_of(request: Request) -> SsoClient | None:
    return getattr(request.app.state, "sso", None)


def _refused(request: Request, status: int, error: str, next_url: str = "") -> Response:
    return page(
        request, "sign_in.html", None, status_code=status, next=safe_next(next_url),
        error=error, sso=client_of(request) is not None,
    )  # fmt: skip


@router.get("/start")
async def start(request: Request, next: str | None = None) -> Response:
    client = client_of(request)
    if client is None:
        return _refused(request, 404, "Single sign-on is not configured on this server.")
    request.session.clear()
    try:
        await client.metadata()
        response: Response = await client.idp.authorize_redirect(
            request, client.config.redirect_url
        )
    except client.failures as exc:
        return _refused(
            request, 502, f"The identity provider could not be reached or is misconfigured "
            f"({_reason(exc)}). Try again, or sign in with an API key.", next or "",
        )  # fmt: skip
    request.session[_NEXT] = safe_next(next)
    return response


@router.get("/callback")
async def callback(request: Request) -> Response:
    client = client_of(request)
    if client is None:
        return _refused(request, 404, "Single sign-on is not configured on this server.")
    next_url = str(request.session.get(_NEXT, ""))
    try:
        await client.metadata()
        token = await client.idp.authorize_access_token(
            request, leeway=LEEWAY_SECONDS, claims_options=client.claims_options()
        )
        claims = token.get("userinfo")
        if not claims:
            raise client.oauth_error(error="no_id_token", description="the IdP sent no ID token")
    except client.failures as exc:
        request.session.clear()
        return _refused(
            request, 401, f"Single sign-on did not sign you in: {_reason(exc)}. "
            "Start again from this page.", next_url,
        )  # fmt: skip
    finally:
        request.session.pop(_NEXT, None)
    return _signed_in(request, client.config, dict(claims), next_url)


def _signed_in(
    request: Request, config: SsoConfig, claims: dict[str, Any], next_url: str
) -> Response:
    name = person_name(config, claims)
    role = role_for(config, claims)
    if name is None:
        claimed = " or ".join(f"`{c}`" for c in config.name_claims)
        return _refused(
            request, 403, f"The identity provider did not say who you are (no {claimed} "
            "claim), so steward cannot record your decisions under your name.", next_url,
        )  # fmt: skip
    if role is None:
        groups = ", ".join(claim_values(claims, config.roles_claim)) or "none"
        return _refused(
            request, 403, f"You signed in as {name}, but none of your groups ({groups}) "
            f"gives access to steward. Ask an administrator to add you to one of: "
            f"{', '.join(sorted(config.roles))}.", next_url,
        )  # fmt: skip
    service = request.app.state.service
    try:
        signed = sign_in(
            service.db, issuer=str(claims["iss"]), subject=str(claims["sub"]), name=name,
            role=role, on_commit=service.journal.publish,
        )  # fmt: skip
    except ConflictError as exc:
        return _refused(request, 403, f"You cannot sign in as {name}: {exc}.", next_url)
    response = redirect(safe_next(next_url), f"Signed in as {name} ({role}) by single sign-on.")
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=config.secure_cookies,
    )
    return response


def _reason(exc: BaseException) -> str:
    """One line for a person: what the library said, without internals."""
    from authlib.integrations.base_client import OAuthError
    from joserfc.errors import JoseError

    if isinstance(exc, OAuthError):
        return str(exc.description or exc.error or "the sign-in was not valid").rstrip(".")
    if isinstance(exc, JoseError):
        detail = f": {exc.description}" if exc.description else ""
        return f"the ID token is not valid ({exc.error}{detail})"
    if isinstance(exc, NETWORK_ERRORS):
        return f"the identity provider did not answer ({type(exc).__name__})"
    return f"the identity provider's answer was malformed ({type(exc).__name__})"
