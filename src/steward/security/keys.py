"""Identities, API key tokens and the role x permission table (pure: no I/O).

A key is `stw_<id>_<secret>`: the id is public and finds the row; only a SHA-256 of the
whole token is stored. A fast hash is right here (unlike for passwords) because the
secret is 256 random bits: nobody can guess it, so slowing each guess gains nothing, and
every API request pays the hash.

Authorisation answers with a Decision (allow or deny with a reason code), never a bool.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from steward.core.decision import Decision, allow, deny


class Role(StrEnum):
    ADMIN = "admin"  # everything, including keys and the kill switch
    REVIEWER = "reviewer"  # read, decide approvals, give feedback, cancel runs
    VIEWER = "viewer"  # read only
    AGENT = "agent"  # one agent's identity: start and read its own runs; never approves


class Permission(StrEnum):
    READ = "read"  # runs, approvals, agents, audit, events
    START_RUN = "runs.start"
    CANCEL_RUN = "runs.cancel"
    DECIDE_APPROVAL = "approvals.decide"
    GIVE_FEEDBACK = "feedback.give"
    MANAGE_AGENTS = "agents.manage"  # kill switch and autonomy mode
    MANAGE_KEYS = "keys.manage"
    VERIFY_AUDIT = "audit.verify"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.REVIEWER: frozenset(
        {
            Permission.READ,
            Permission.CANCEL_RUN,
            Permission.DECIDE_APPROVAL,
            Permission.GIVE_FEEDBACK,
            Permission.VERIFY_AUDIT,
        }
    ),
    Role.VIEWER: frozenset({Permission.READ, Permission.VERIFY_AUDIT}),
    # Scoped to the key's own agent by `authorize`; the approval permission is absent on
    # purpose: an agent must never approve its own (or any) calls.
    Role.AGENT: frozenset({Permission.READ, Permission.START_RUN}),
}


class Kind(StrEnum):
    """What a principal is. A person may hold keys of several roles; an agent holds only
    agent keys for its one agent."""

    PERSON = "person"
    AGENT = "agent"


def kind_of(role: Role) -> Kind:
    return Kind.AGENT if role is Role.AGENT else Kind.PERSON


# Run tags naming who started a run: a readable label, and the principal four eyes compares.
STARTED_BY = "started_by"
STARTED_BY_PRINCIPAL = "started_by_principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key used ("" for a person signed in by single sign-on), the
    principal (person or agent) holding it, the principal's unique name, and the key's role
    (or the role SSO gave; and agent, for agent keys). Identity is `principal_id`: two keys
    of one person, or a key and an SSO sign-in of that person, are one person."""

    key_id: str
    principal_id: str
    name: str
    role: Role
    agent: str | None = None

    @property
    def label(self) -> str:
        """How the principal appears in the audit trail (readable; never compared)."""
        return f"agent:{self.agent}" if self.role is Role.AGENT else f"{self.role}:{self.name}"

    def starter_tags(self) -> dict[str, str]:
        """The tags a run started by this principal carries (they override any given)."""
        return {STARTED_BY: self.label, STARTED_BY_PRINCIPAL: self.principal_id}


def authorize(principal: Principal, permission: Permission, agent: str | None = None) -> Decision:
    """May `principal` do `permission` (on `agent`'s resources, when given)?"""
    if permission not in _GRANTS[principal.role]:
        return deny(
            "auth.forbidden",
            f"role {principal.role} may not {permission}",
            f"role.{principal.role}",
        )
    if principal.role is Role.AGENT:
        if agent is None:
            return deny(
                "auth.agent_scope",
                f"an agent key may only {permission} for its own agent",
                "role.agent",
            )
        if agent != principal.agent:
            return deny(
                "auth.agent_scope",
                f"key for agent {principal.agent} may not act on agent {agent}",
                "role.agent",
            )
    return allow("auth.granted", f"{principal.label} may {permission}", f"role.{principal.role}")


_TOKEN = re.compile(r"^stw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def new_token() -> tuple[str, str]:
    """A fresh (key id, token). The token is shown once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"stw_{key_id}_{secrets.token_urlsafe(32)}"


def token_key_id(token: str) -> str | None:
    """The key id a well-formed token names, or None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def secret_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(token), stored_hash)


def new_principal_id() -> str:
    return f"prn_{secrets.token_hex(6)}"


def new_session_token() -> str:
    return secrets.token_urlsafe(32)
