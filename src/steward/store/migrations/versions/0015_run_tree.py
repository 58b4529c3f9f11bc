"""Run trees (delegation, steward/orchestration/): a specialist's run records the run that
delegated to it (parent_run_id), the root of its tree (root_run_id) and its depth below
the root (hop). Roots keep both ids NULL and hop 0, so existing runs need no backfill.

Revision ID: 0015
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on both databases: the runs table is not rebuilt (its search
    # triggers, migration 0014, stay as they are)
    op.add_column("runs", sa.Column("parent_run_id", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("root_run_id", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("hop", sa.Integer, nullable=False, server_default="0"))
    # only runs below a root: roots keep it NULL and are never looked up by it
    only_below = sa.text("root_run_id IS NOT NULL")
    op.create_index("ix_runs_root", "runs", ["root_run_id", "created_at"],
                    sqlite_where=only_below, postgresql_where=only_below)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_runs_root", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("hop")
        batch.drop_column("root_run_id")
        batch.drop_column("parent_run_id")
