"""Principals, API keys and console sessions in the store.

A key belongs to a principal: a person or an agent with a unique name. Issuing a key
for a name creates that principal, or gives it another key (the same person with two
keys is one person). Issuing and revoking a key are audited: each appends an event to
the chain in the same transaction as the row change. Secrets are never stored, only
their SHA-256.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from steward.core.errors import ConflictError, InvalidInput, NotFoundError
from steward.core.events import KeyCreated, KeyRevoked
from steward.security.keys import (
    Kind,
    Principal,
    Role,
    hash_secret,
    kind_of,
    new_principal_id,
    new_session_token,
    new_token,
    secret_matches,
    token_key_id,
)
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.schema import api_keys, console_sessions, principals

SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    principal_id: str
    name: str  # the principal's name
    role: Role
    agent: str | None
    created_at: float
    created_by: str
    revoked_at: float | None

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.principal_id, self.name, self.role, self.agent)


# A key's row with its principal's name: the name is the principal's, never the key's own.
_KEYS = select(
    api_keys.c.id, api_keys.c.principal_id, principals.c.name, api_keys.c.role,
    api_keys.c.agent, api_keys.c.created_at, api_keys.c.created_by, api_keys.c.revoked_at,
    api_keys.c.secret_hash,
).select_from(api_keys.join(principals, api_keys.c.principal_id == principals.c.id))  # fmt: skip


def _key_row(row: Any) -> KeyRow:
    return KeyRow(row.id, row.principal_id, row.name, Role(row.role), row.agent, row.created_at,
                  row.created_by, row.revoked_at)  # fmt: skip


def _principal(row: Any) -> Principal | None:
    """A stored key's principal; None (unauthenticated) for a role this version does not
    know, e.g. a row edited by hand: an unknown role is never granted anything."""
    try:
        return _key_row(row).principal
    except ValueError:
        return None


def holder_of(
    connection: Connection, name: str, role: Role, agent: str | None, by: str, moment: float
) -> str:
    """The id of the principal named `name`, created when new. A name belongs to one
    principal: a person's name cannot take an agent key, nor an agent's name a person's
    key or another agent's key (ConflictError)."""
    kind = kind_of(role)
    found = connection.execute(
        select(principals).where(principals.c.name == name).with_for_update()
    ).first()
    if found is None:
        principal_id = new_principal_id()
        connection.execute(
            insert(principals).values(
                id=principal_id, name=name, kind=kind.value, agent=agent,
                created_at=moment, created_by=by,
            )
        )  # fmt: skip
        return principal_id
    if found.kind != kind.value:
        held, wanted = ("an agent", "a person") if kind is Kind.PERSON else ("a person", "an agent")
        raise ConflictError(
            f"{name!r} is already the name of {held}; {wanted}'s key needs a name of its own"
        )
    if kind is Kind.AGENT and found.agent != agent:
        raise ConflictError(
            f"{name!r} is already the name of agent {found.agent}'s identity; "
            f"agent {agent}'s key needs a name of its own"
        )
    return str(found.id)


def create_key(
    db: Database,
    *,
    name: str,
    role: Role,
    agent: str | None = None,
    by: str,
    on_commit: Published | None = None,
) -> tuple[KeyRow, str]:
    """Issue a key to the principal `name` (created when new; a second key for a name is
    another key of the same principal). Returns its row and the token, which is shown
    once and never again."""
    if (role is Role.AGENT) != (agent is not None):
        raise InvalidInput("an agent key names its agent; a person's key names none")
    name = name.strip()
    if not name:
        raise InvalidInput("a key needs a name (who or what holds it)")
    key_id, token = new_token()
    for attempt in range(2):  # two first keys for one new name: the loser attaches
        moment = time.time()
        try:
            with db.writer.begin() as connection:
                principal_id = holder_of(connection, name, role, agent, by, moment)
                connection.execute(
                    insert(api_keys).values(
                        id=key_id, principal_id=principal_id, name=name, role=role.value,
                        agent=agent, secret_hash=hash_secret(token), created_at=moment,
                        created_by=by,
                    )
                )  # fmt: skip
                event = KeyCreated(key_id, name, role.value, agent, by, principal_id)
                committed = append_event(connection, None, event, moment)
            break
        except IntegrityError:
            if attempt:
                raise
    if on_commit is not None:
        on_commit([committed])
    return KeyRow(key_id, principal_id, name, role, agent, moment, by, None), token


def revoke_key(
    db: Database, key_id: str, *, by: str, comment: str = "", on_commit: Published | None = None
) -> KeyRow:
    """Revoke a key and end its console sessions. Revoking twice is a conflict."""
    moment = time.time()
    with db.writer.begin() as connection:
        row = connection.execute(
            select(api_keys).where(api_keys.c.id == key_id).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no key with id {key_id!r}")
        if row.revoked_at is not None:
            raise ConflictError(f"key {key_id} is already revoked")
        connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=moment, revoked_by=by)
        )
        connection.execute(delete(console_sessions).where(console_sessions.c.key_id == key_id))
        committed = append_event(connection, None, KeyRevoked(key_id, by, comment), moment)
    if on_commit is not None:
        on_commit([committed])
    return get_key(db, key_id)


def get_key(db: Database, key_id: str) -> KeyRow:
    with db.reader.connect() as connection:
        row = connection.execute(_KEYS.where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFoundError(f"no key with id {key_id!r}")
    return _key_row(row)


def list_keys(db: Database, *, include_revoked: bool = False) -> list[KeyRow]:
    query = _KEYS.order_by(api_keys.c.created_at)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    with db.reader.connect() as connection:
        return [_key_row(r) for r in connection.execute(query)]


def authenticate_token(db: Database, token: str) -> Principal | None:
    """The principal a token belongs to, or None (malformed, unknown, wrong or revoked)."""
    key_id = token_key_id(token)
    if key_id is None:
        return None
    with db.reader.connect() as connection:
        row = connection.execute(_KEYS.where(api_keys.c.id == key_id)).first()
    if row is None or row.revoked_at is not None or not secret_matches(token, row.secret_hash):
        return None
    return _principal(row)


def principal_named(db: Database, name: str) -> str | None:
    """The id of the principal with this unique name, or None."""
    with db.reader.connect() as connection:
        found = connection.execute(select(principals.c.id).where(principals.c.name == name))
        return found.scalar_one_or_none()


def open_session(db: Database, principal: Principal, seconds: float = SESSION_SECONDS) -> str:
    """A console session for a signed-in key; returns the cookie's token."""
    token = new_session_token()
    moment = time.time()
    with db.writer.begin() as connection:
        connection.execute(
            insert(console_sessions).values(
                token_hash=hash_secret(token), key_id=principal.key_id,
                created_at=moment, expires_at=moment + seconds,
            )
        )  # fmt: skip
    return token


def session_principal(db: Database, token: str) -> Principal | None:
    """The principal of a live session: of an unrevoked key, or of a person signed in by
    single sign-on (with the role their groups gave at sign-in; no key). None otherwise."""
    token_hash, now = hash_secret(token), time.time()
    query = _KEYS.join_from(
        api_keys, console_sessions, console_sessions.c.key_id == api_keys.c.id
    ).where(
        console_sessions.c.token_hash == token_hash,
        console_sessions.c.expires_at > now,
        api_keys.c.revoked_at.is_(None),
    )
    sso = (
        select(principals.c.id, principals.c.name, principals.c.kind, console_sessions.c.role)
        .select_from(
            console_sessions.join(principals, console_sessions.c.principal_id == principals.c.id)
        )
        .where(
            console_sessions.c.token_hash == token_hash,
            console_sessions.c.expires_at > now,
            console_sessions.c.key_id.is_(None),
        )
    )
    with db.reader.connect() as connection:
        row = connection.execute(query).first()
        if row is not None:
            return _principal(row)
        person = connection.execute(sso).first()
    if person is None or person.kind != Kind.PERSON.value:
        return None
    try:
        role = Role(person.role)
    except ValueError:  # a role this version does not know is never granted anything
        return None
    return None if role is Role.AGENT else Principal("", person.id, person.name, role)


def close_session(db: Database, token: str) -> None:
    with db.writer.begin() as connection:
        connection.execute(
            delete(console_sessions).where(console_sessions.c.token_hash == hash_secret(token))
        )
