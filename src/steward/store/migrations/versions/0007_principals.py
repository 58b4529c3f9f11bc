"""Principals: every key belongs to a person or an agent with a unique name.

Existing keys are grouped, never split:
- people's keys (admin, reviewer, viewer) with the same name become one person. Merging
  can only make four eyes stricter (the keys can no longer decide each other's runs);
  splitting them would keep today's bypass, where a reviewer key `ops` approved what
  the admin key `ops` started.
- agent keys with the same name and agent become one agent principal. Its name is the
  key's name, or `name@agent` when a person (or another agent) already holds it, then
  `name@agent-2`, ... until unique. Agent keys never decide, so this naming only labels.

Revision ID: 0007
Revises: 0006
"""

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("principal_id", sa.String(32), nullable=True))

    connection = op.get_bind()
    keys = sa.table(
        "api_keys",
        sa.column("id"), sa.column("name"), sa.column("role"), sa.column("agent"),
        sa.column("created_at"), sa.column("principal_id"),
    )  # fmt: skip
    principals = sa.table(
        "principals",
        sa.column("id"), sa.column("name"), sa.column("kind"), sa.column("agent"),
        sa.column("created_at"), sa.column("created_by"),
    )  # fmt: skip
    rows = connection.execute(sa.select(keys).order_by(keys.c.created_at, keys.c.id)).all()
    groups: dict[tuple[str, str | None], list[str]] = {}
    first_seen: dict[tuple[str, str | None], float] = {}
    for row in rows:
        # (name, None) for a person; (name, agent) for an agent key
        group = (row.name, row.agent if row.role == "agent" else None)
        groups.setdefault(group, []).append(row.id)
        first_seen.setdefault(group, row.created_at)
    taken: set[str] = set()
    # people first: they keep their names (four eyes is about people)
    ordered = sorted(groups, key=lambda g: (g[1] is not None, first_seen[g]))
    for name, agent in ordered:
        label = (
            name
            if agent is None
            else _unique(name if name not in taken else f"{name}@{agent}", taken)
        )
        taken.add(label)
        principal_id = f"prn_{secrets.token_hex(6)}"
        connection.execute(
            sa.insert(principals).values(
                id=principal_id, name=label, kind="person" if agent is None else "agent",
                agent=agent, created_at=first_seen[(name, agent)] or time.time(),
                created_by="migration 0005_principals",
            )
        )  # fmt: skip
        connection.execute(
            sa.update(keys)
            .where(keys.c.id.in_(groups[(name, agent)]))
            .values(principal_id=principal_id)
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("principal_id", existing_type=sa.String(32), nullable=False)
        batch.create_index("ix_api_keys_principal", ["principal_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_principal")
        batch.drop_column("principal_id")
    op.drop_table("principals")
