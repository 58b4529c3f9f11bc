"""Shared limits: rate slots and budget holds counted in the store (store/limits.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("hold", sa.String(64), nullable=True),
        sa.Column("slot_token", sa.String(32), nullable=True),
    )
    op.create_index("ix_limit_usage_key_at", "limit_usage", ["key", "at"])
    op.create_index("ix_limit_usage_hold", "limit_usage", ["hold"])


def downgrade() -> None:
    op.drop_index("ix_limit_usage_hold", table_name="limit_usage")
    op.drop_index("ix_limit_usage_key_at", table_name="limit_usage")
    op.drop_table("limit_usage")
