"""Single sign-on settings and the one rule that turns an identity provider's claims into a
steward role (pure: no I/O).

People sign in to the console with OpenID Connect (the server side lives in
`steward.server.console.sso`); API keys stay for machines. The settings come from the
environment (`SsoConfig.from_env`):

    STEWARD_OIDC_ISSUER         https://idp.example.com/realms/bank (discovery is read from
                                <issuer>/.well-known/openid-configuration)
    STEWARD_OIDC_CLIENT_ID      the client registered at the IdP
    STEWARD_OIDC_CLIENT_SECRET  its secret (confidential client; never in a file)
    STEWARD_OIDC_REDIRECT_URL   https://steward.example.com/console/sso/callback
    STEWARD_OIDC_ROLES          group-or-value=role pairs, comma separated:
                                "steward-admins=admin,payments-ops=reviewer,audit=viewer"
    STEWARD_OIDC_ROLES_CLAIM    the claim holding groups or roles (default `groups`)
    STEWARD_OIDC_NAME_CLAIM     the claim naming the person (default `preferred_username`,
                                then `email`)
    STEWARD_OIDC_SCOPES         default "openid profile email"
    STEWARD_SESSION_SECRET      signs the short-lived sign-in cookie (state, nonce, PKCE
                                verifier); set it when more than one process serves

Fail closed: a person none of whose groups is mapped gets no role and no session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from steward.core.errors import InvalidInput
from steward.security.keys import Role

ENV = "STEWARD_OIDC_"
# Highest first: a person in several mapped groups gets the strongest of their roles.
_RANK = (Role.ADMIN, Role.REVIEWER, Role.VIEWER)
_REQUIRED = ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URL", "ROLES")


@dataclass(frozen=True, slots=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str
    roles: Mapping[str, Role]  # a group (or other claim value) -> the steward role it gives
    roles_claim: str = "groups"
    name_claims: tuple[str, ...] = ("preferred_username", "email")
    scopes: str = "openid profile email"
    session_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, value in (("ISSUER", self.issuer), ("REDIRECT_URL", self.redirect_url)):
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                raise InvalidInput(f"{ENV}{name}: {value!r} is not an http(s) URL")
        if "openid" not in self.scopes.split():
            raise InvalidInput(f"{ENV}SCOPES: {self.scopes!r} must include `openid`")
        if not self.roles:
            raise InvalidInput(f"{ENV}ROLES: map at least one group to a role")
        if Role.AGENT in self.roles.values():
            raise InvalidInput(f"{ENV}ROLES: people cannot be given the agent role")

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.redirect_url).scheme == "https"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SsoConfig | None:
        """The settings from `env`, or None when no STEWARD_OIDC_* variable is set.
        Half a configuration is an error (InvalidInput naming the variable)."""
        given = {
            k[len(ENV) :]: v.strip() for k, v in env.items() if k.startswith(ENV) and v.strip()
        }
        if not given:
            return None
        missing = [f"{ENV}{name}" for name in _REQUIRED if name not in given]
        if missing:
            raise InvalidInput(f"single sign-on needs {', '.join(missing)} as well")
        names = given.get("NAME_CLAIM")
        return cls(
            issuer=given["ISSUER"],
            client_id=given["CLIENT_ID"],
            client_secret=given["CLIENT_SECRET"],
            redirect_url=given["REDIRECT_URL"],
            roles=parse_roles(given["ROLES"]),
            roles_claim=given.get("ROLES_CLAIM", "groups"),
            name_claims=(names,) if names else ("preferred_username", "email"),
            scopes=given.get("SCOPES", "openid profile email"),
            session_secret=env.get("STEWARD_SESSION_SECRET") or None,
        )


def parse_roles(text: str) -> dict[str, Role]:
    """'group=role,group=role' -> {group: Role}; InvalidInput names the bad pair."""
    roles: dict[str, Role] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        group, sep, role = (s.strip() for s in pair.rpartition("="))
        if not sep or not group:
            raise InvalidInput(f"{ENV}ROLES: {pair!r} is not group=role")
        try:
            roles[group] = Role(role)
        except ValueError:
            raise InvalidInput(
                f"{ENV}ROLES: {pair!r}: role must be admin, reviewer or viewer"
            ) from None
    return roles


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The values of a groups-like claim: a list of strings, or one string. A dotted name
    reads a nested claim (`realm_access.roles` in Keycloak)."""
    value: Any = claims
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def role_for(config: SsoConfig, claims: Mapping[str, Any]) -> Role | None:
    """The strongest role any of the person's groups maps to; None (no access) when none
    does: an unmapped person is never given a default role."""
    granted = {
        config.roles[v] for v in claim_values(claims, config.roles_claim) if v in config.roles
    }
    return next((role for role in _RANK if role in granted), None)


def person_name(config: SsoConfig, claims: Mapping[str, Any]) -> str | None:
    """The name a person is known by in steward: the first name claim that is a non-empty
    string (at most 128 characters, the principals' column)."""
    for claim in config.name_claims:
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:128]
    return None
