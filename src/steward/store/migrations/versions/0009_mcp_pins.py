"""Pinned MCP tool definitions: the trusted and the currently shown hash of each tool.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_pins",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("tool", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("approved_sha256", sa.String(64), nullable=True),
        sa.Column("seen_sha256", sa.String(64), nullable=False),
        sa.Column("seen_definition", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mcp_pins")
