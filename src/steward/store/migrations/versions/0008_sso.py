"""Single sign-on: identities an OpenID provider vouches for, and console sessions that
belong to a person rather than to a key.

- `sso_identities` links (issuer, subject) — the IdP's stable id of a person — to a
  steward principal, so a person who signs in by SSO and also holds keys is one person
  (four eyes compares principals).
- `console_sessions` gains `principal_id` and `role` for SSO sessions (the role is the
  one the IdP's groups gave at sign-in); `key_id` becomes optional (NULL for them).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_identities",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("principal_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sso_identities_principal", "sso_identities", ["principal_id"])
    with op.batch_alter_table("console_sessions") as batch:
        batch.alter_column("key_id", existing_type=sa.String(32), nullable=True)
        batch.add_column(sa.Column("principal_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))


def downgrade() -> None:
    connection = op.get_bind()
    connection.execute(sa.text("DELETE FROM console_sessions WHERE key_id IS NULL"))
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("role")
        batch.drop_column("principal_id")
        batch.alter_column("key_id", existing_type=sa.String(32), nullable=False)
    op.drop_index("ix_sso_identities_principal", table_name="sso_identities")
    op.drop_table("sso_identities")
