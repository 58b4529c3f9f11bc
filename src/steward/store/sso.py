"""Single sign-on in the store: which principal an identity provider's person is, and
console sessions that belong to a person (not to a key).

A person is found by the IdP's stable id, (issuer, subject). The first time, they are
linked to the person principal with their name — the one who may already hold keys, so
that signing in by SSO and using a key stay one person for four eyes — or a new one.
A name another SSO identity of the same issuer already holds, or an agent's name, is
refused (ConflictError): two people are never merged, and an agent never signs in.
Each sign-in is audited: a `person.signed_in` event, in the transaction that links the
identity and opens the session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from steward.core.errors import ConflictError, NotFoundError
from steward.core.events import PersonSignedIn
from steward.security.keys import Kind, Role, hash_secret, new_session_token
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.keys import SESSION_SECONDS, holder_of
from steward.store.schema import api_keys, console_sessions, principals, sso_identities


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal_id: str
    token: str  # the session cookie's value (only its SHA-256 is stored)
    linked: bool  # the identity's first sign-in


def sign_in(
    db: Database,
    *,
    issuer: str,
    subject: str,
    name: str,
    role: Role,
    seconds: float = SESSION_SECONDS,
    on_commit: Published | None = None,
) -> SignedIn:
    """Sign the person (issuer, subject), known as `name`, in with `role`: link the
    identity on its first sign-in, open a console session, record the event."""
    if role is Role.AGENT:
        raise ConflictError("an agent never signs in to the console")
    for attempt in range(2):  # two first sign-ins of one person at once: the loser reads
        try:
            moment = time.time()
            with db.writer.begin() as connection:
                principal_id, linked = _link(connection, issuer, subject, name, moment)
                token = new_session_token()
                connection.execute(
                    insert(console_sessions).values(
                        token_hash=hash_secret(token), key_id=None, principal_id=principal_id,
                        role=role.value, created_at=moment, expires_at=moment + seconds,
                    )
                )  # fmt: skip
                event = PersonSignedIn(principal_id, name, role.value, issuer, subject, linked)
                committed = append_event(connection, None, event, moment)
            break
        except IntegrityError:
            if attempt:
                raise
    if on_commit is not None:
        on_commit([committed])
    return SignedIn(principal_id, token, linked)


def _link(
    connection: Connection, issuer: str, subject: str, name: str, moment: float
) -> tuple[str, bool]:
    """(the principal id of the identity, whether it was linked just now)."""
    linked = connection.execute(
        select(sso_identities.c.principal_id).where(
            sso_identities.c.issuer == issuer, sso_identities.c.subject == subject
        )
    ).scalar_one_or_none()
    if linked is not None:
        return str(linked), False
    principal_id = holder_of(connection, name, Role.VIEWER, None, "sso", moment)
    other = connection.execute(
        select(sso_identities.c.subject).where(
            sso_identities.c.issuer == issuer, sso_identities.c.principal_id == principal_id
        )
    ).first()
    if other is not None:
        raise ConflictError(
            f"{name!r} is already the name of another person signed in by this identity "
            "provider; an admin must resolve the clash"
        )
    connection.execute(
        insert(sso_identities).values(
            issuer=issuer, subject=subject, principal_id=principal_id, created_at=moment
        )
    )
    return principal_id, True


def end_sessions(db: Database, name: str) -> int:
    """End every console session of the person `name`: by single sign-on and with any of
    their keys. Returns how many ended; NotFoundError when no person has that name."""
    with db.writer.begin() as connection:
        person = connection.execute(
            select(principals.c.id).where(
                principals.c.name == name.strip(), principals.c.kind == Kind.PERSON.value
            )
        ).scalar_one_or_none()
        if person is None:
            raise NotFoundError(f"no person named {name!r}")
        keys = select(api_keys.c.id).where(api_keys.c.principal_id == person)
        ended = connection.execute(
            delete(console_sessions).where(
                or_(console_sessions.c.principal_id == person, console_sessions.c.key_id.in_(keys))
            )
        )
        return int(ended.rowcount or 0)
