"""Single sign-on in the store: an IdP's (issuer, subject) is one steward person — the one
holding keys under that name, or a new one — never an agent, never two people merged; a
person's console session carries the role their groups gave; each sign-in is an audited
event in the chain; an admin can end a person's sessions; migration 0008 both ways."""

from __future__ import annotations

import json
import time

import pytest
from alembic import command
from sqlalchemy import insert, select, update

from steward.core.errors import ConflictError, NotFoundError
from steward.security.keys import Role
from steward.store import Database
from steward.store.chain import verify_chain
from steward.store.database import _alembic_config, head_revision
from steward.store.keys import create_key, open_session, principal_named, session_principal
from steward.store.schema import console_sessions, events, principals, sso_identities
from steward.store.sso import end_sessions, sign_in

IDP = "https://login.example.com/realms/bank"


def person(db: Database, subject: str, name: str, role: Role = Role.VIEWER) -> str:
    return sign_in(db, issuer=IDP, subject=subject, name=name, role=role).principal_id


def test_a_first_sign_in_links_the_person_of_that_name(any_db: Database) -> None:
    key, _ = create_key(any_db, name="rosa", role=Role.ADMIN, by="test")
    assert person(any_db, "u-rosa", "rosa") == key.principal_id
    assert person(any_db, "u-rosa", "rosa-renamed") == key.principal_id
    fresh = person(any_db, "u-vic", "vic")
    assert fresh == principal_named(any_db, "vic") != key.principal_id
    with any_db.reader.connect() as connection:
        kind = connection.execute(select(principals.c.kind).where(principals.c.id == fresh))
        assert kind.scalar_one() == "person"
        links = connection.execute(select(sso_identities.c.subject)).scalars().all()
    assert sorted(links) == ["u-rosa", "u-vic"]


def test_names_are_never_merged_or_taken_from_agents(any_db: Database) -> None:
    create_key(any_db, name="bot", role=Role.AGENT, agent="support-desk", by="test")
    with pytest.raises(ConflictError, match="already the name of an agent"):
        person(any_db, "u-bot", "bot")
    person(any_db, "u-rosa", "rosa")
    with pytest.raises(ConflictError, match="another person signed in by this identity"):
        person(any_db, "u-other", "rosa")
    # another issuer's person of that name is the steward person "rosa": the operator who
    # configures an IdP trusts its names (the README says to pick a claim the IdP controls)
    other = sign_in(any_db, issuer="https://other.example", subject="x", name="rosa",
                    role=Role.VIEWER)  # fmt: skip
    assert other.principal_id == principal_named(any_db, "rosa")
    with pytest.raises(ConflictError, match="never signs in"):
        person(any_db, "u-rosa", "rosa", Role.AGENT)


def test_a_person_session_has_the_role_given_at_sign_in(any_db: Database) -> None:
    signed = sign_in(any_db, issuer=IDP, subject="u-rosa", name="rosa", role=Role.REVIEWER)
    found = session_principal(any_db, signed.token)
    assert found is not None
    assert (found.key_id, found.principal_id, found.name, found.role) == (
        "",
        signed.principal_id,
        "rosa",
        Role.REVIEWER,
    )
    assert session_principal(any_db, signed.token + "x") is None
    # a key's sessions are as before
    key, _ = create_key(any_db, name="vic", role=Role.VIEWER, by="test")
    keyed = session_principal(any_db, open_session(any_db, key.principal))
    assert keyed is not None and keyed.key_id == key.id


def test_an_expired_or_unknown_role_session_grants_nothing(any_db: Database) -> None:
    expired = sign_in(any_db, issuer=IDP, subject="u", name="rosa", role=Role.ADMIN, seconds=-1)
    assert session_principal(any_db, expired.token) is None
    edited = sign_in(any_db, issuer=IDP, subject="u", name="rosa", role=Role.VIEWER)
    with any_db.writer.begin() as connection:
        connection.execute(
            update(console_sessions)
            .where(console_sessions.c.key_id.is_(None))
            .values(role="superuser")
        )
    assert session_principal(any_db, edited.token) is None


def test_every_sign_in_is_in_the_audit_chain(any_db: Database) -> None:
    first = sign_in(any_db, issuer=IDP, subject="u-rosa", name="rosa", role=Role.REVIEWER)
    again = sign_in(any_db, issuer=IDP, subject="u-rosa", name="rosa", role=Role.ADMIN)
    assert (first.linked, again.linked) == (True, False)
    with any_db.reader.connect() as connection:
        rows = (
            connection.execute(
                select(events.c.data)
                .where(events.c.type == "person.signed_in")
                .order_by(events.c.id)
            )
            .scalars()
            .all()
        )
        assert verify_chain(connection).ok
    recorded = [json.loads(r) for r in rows]
    assert [(r["name"], r["role"], r["linked"]) for r in recorded] == [
        ("rosa", "reviewer", True), ("rosa", "admin", False)
    ]  # fmt: skip
    assert {(r["principal"], r["issuer"], r["subject"]) for r in recorded} == {
        (first.principal_id, IDP, "u-rosa")
    }


def test_an_admin_ends_a_persons_sessions(any_db: Database) -> None:
    key, _ = create_key(any_db, name="rosa", role=Role.REVIEWER, by="test")
    other, _ = create_key(any_db, name="vic", role=Role.VIEWER, by="test")
    keyed = open_session(any_db, key.principal)
    by_sso = sign_in(any_db, issuer=IDP, subject="u-rosa", name="rosa", role=Role.ADMIN).token
    kept = open_session(any_db, other.principal)
    assert end_sessions(any_db, "rosa") == 2
    assert session_principal(any_db, keyed) is None and session_principal(any_db, by_sso) is None
    assert session_principal(any_db, kept) is not None
    assert end_sessions(any_db, "rosa") == 0
    with pytest.raises(NotFoundError, match="no person named 'nobody'"):
        end_sessions(any_db, "nobody")


def _at(db: Database, revision: str, *, down: bool) -> None:
    config = _alembic_config()
    with db.writer.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migration_0008_up_and_down(any_db: Database) -> None:
    key, _ = create_key(any_db, name="ana", role=Role.VIEWER, by="test")
    keyed = open_session(any_db, key.principal)
    sign_in(any_db, issuer=IDP, subject="u-rosa", name="rosa", role=Role.VIEWER)
    _at(any_db, "0007", down=True)  # person sessions go; key sessions stay
    with any_db.reader.connect() as connection:
        assert connection.execute(select(console_sessions.c.key_id)).scalars().all() == [key.id]
    any_db.migrate()
    assert any_db.current_revision() == head_revision()
    assert session_principal(any_db, keyed) is not None
    with any_db.writer.begin() as connection:
        connection.execute(
            insert(console_sessions).values(
                token_hash="h", key_id=None, principal_id="p", role="viewer",
                created_at=time.time(), expires_at=time.time() + 60,
            )
        )  # fmt: skip
