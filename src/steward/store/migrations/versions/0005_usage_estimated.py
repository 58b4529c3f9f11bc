"""Cost ledger rows say whether their tokens were estimated (the provider reported none).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cost_ledger",
        sa.Column("estimated", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("cost_ledger") as batch:
        batch.drop_column("estimated")
