"""API keys and console sessions; run listing indexes for cursor pagination.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_console_sessions_key", "console_sessions", ["key_id"])
    # Newest-first pages walk (created_at, id); the old single-column index is subsumed.
    op.drop_index("ix_runs_created", table_name="runs")
    op.create_index("ix_runs_created_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_created", table_name="runs")
    op.drop_index("ix_runs_created_id", table_name="runs")
    op.create_index("ix_runs_created", "runs", ["created_at"])
    op.drop_index("ix_console_sessions_key", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("api_keys")
