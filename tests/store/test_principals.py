"""Principals in the store: a name is one person or one agent; every key issued to a name
is that principal's; migration 0005 groups the keys that existed before principals."""

from __future__ import annotations

import time

import pytest
from alembic import command
from sqlalchemy import insert, select

from steward.core.errors import ConflictError
from steward.security.keys import Role, hash_secret
from steward.store import Database
from steward.store.database import _alembic_config, head_revision
from steward.store.keys import authenticate_token, create_key, list_keys, principal_named
from steward.store.schema import api_keys, principals


def test_every_key_of_a_name_is_one_principal(any_db: Database) -> None:
    first, first_token = create_key(any_db, name="alice", role=Role.REVIEWER, by="test")
    second, second_token = create_key(any_db, name=" alice ", role=Role.ADMIN, by="test")
    other, _ = create_key(any_db, name="bob", role=Role.REVIEWER, by="test")
    assert first.principal_id == second.principal_id != other.principal_id
    assert principal_named(any_db, "alice") == first.principal_id
    a, b = authenticate_token(any_db, first_token), authenticate_token(any_db, second_token)
    assert a is not None and b is not None
    assert (a.principal_id, a.role) == (first.principal_id, Role.REVIEWER)
    assert (b.principal_id, b.role) == (first.principal_id, Role.ADMIN)
    assert {k.name for k in list_keys(any_db)} == {"alice", "bob"}


def test_a_name_belongs_to_one_kind_of_principal(any_db: Database) -> None:
    create_key(any_db, name="alice", role=Role.VIEWER, by="test")
    with pytest.raises(ConflictError, match="already the name of a person"):
        create_key(any_db, name="alice", role=Role.AGENT, agent="support-desk", by="test")
    bot, _ = create_key(any_db, name="bot", role=Role.AGENT, agent="support-desk", by="test")
    again, _ = create_key(any_db, name="bot", role=Role.AGENT, agent="support-desk", by="test")
    assert bot.principal_id == again.principal_id
    with pytest.raises(ConflictError, match="already the name of agent support-desk"):
        create_key(any_db, name="bot", role=Role.AGENT, agent="billing", by="test")
    with pytest.raises(ConflictError, match="already the name of an agent"):
        create_key(any_db, name="bot", role=Role.ADMIN, by="test")
    with any_db.reader.connect() as connection:
        kinds = dict(connection.execute(select(principals.c.name, principals.c.kind)).all())
    assert kinds == {"alice": "person", "bot": "agent"}


def _at(db: Database, revision: str, *, down: bool) -> None:
    config = _alembic_config()
    with db.writer.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migration_groups_existing_keys_by_name(any_db: Database) -> None:
    """Keys issued before principals: the admin `ops` and the reviewer `ops` become one
    person (four eyes can only get stricter); agent keys keep to their agent, and an
    agent key whose name a person holds gets `name@agent`."""
    _at(any_db, "0004", down=True)
    now = time.time()
    legacy = [
        ("k1", "ops", "admin", None), ("k2", "ops", "reviewer", None),
        ("k3", "ana", "viewer", None), ("k4", "ops", "agent", "support-desk"),
        ("k5", "bot", "agent", "support-desk"), ("k6", "bot", "agent", "support-desk"),
        ("k7", "bot", "agent", "billing"),
    ]  # fmt: skip
    with any_db.writer.begin() as connection:
        for index, (key_id, name, role, agent) in enumerate(legacy):
            row = {"id": key_id, "name": name, "role": role, "agent": agent}
            stamp = {"secret_hash": hash_secret(key_id), "created_at": now + index}
            # the 0004 columns only: no principal yet
            connection.execute(insert(api_keys).values(**row, **stamp, created_by="test"))
    any_db.migrate()
    assert any_db.current_revision() == head_revision()
    with any_db.reader.connect() as connection:
        owner = dict(connection.execute(select(api_keys.c.id, api_keys.c.principal_id)).all())
        named = {
            row.id: (row.name, row.kind, row.agent)
            for row in connection.execute(select(principals))
        }
    assert owner["k1"] == owner["k2"] and named[owner["k1"]] == ("ops", "person", None)
    assert named[owner["k3"]] == ("ana", "person", None)
    assert named[owner["k4"]] == ("ops@support-desk", "agent", "support-desk")
    assert owner["k5"] == owner["k6"] and named[owner["k5"]] == ("bot", "agent", "support-desk")
    assert named[owner["k7"]] == ("bot@billing", "agent", "billing")
    assert len(named) == 5
