"""The cost ledger (one row per priced model call or costed tool call), and an index
for latency reports.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cost_ledger",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_input_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    op.create_index("ix_cost_ledger_agent_day", "cost_ledger", ["agent", "day"])
    op.create_index("ix_cost_ledger_run", "cost_ledger", ["run_id"])
    op.create_index("ix_events_type_ts", "events", ["type", "ts"])  # latency reports


def downgrade() -> None:
    op.drop_index("ix_events_type_ts", "events")
    op.drop_table("cost_ledger")
