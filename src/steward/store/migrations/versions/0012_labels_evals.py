"""Labels, their history and evaluation results; the prompt file of an agent version; the
label and canary arm that chose a run's version.

Revision ID: 0012
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_labels",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("canary_version", sa.String(64), nullable=True),
        sa.Column("canary_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "label_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous", sa.String(64), nullable=True),
        sa.Column("canary_version", sa.String(64), nullable=True),
        sa.Column("canary_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("eval_result", sa.String(64), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_label_history_agent_label", "label_history", ["agent", "label", "id"])
    op.create_table(
        "eval_results",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("required_passed", sa.Integer, nullable=False),
        sa.Column("required_total", sa.Integer, nullable=False),
        sa.Column("scored_rate", sa.Float, nullable=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_eval_results_agent_version", "eval_results", ["agent", "version", "suite"])
    with op.batch_alter_table("agent_versions") as batch:
        batch.add_column(sa.Column("prompt_path", sa.Text, nullable=True))
        batch.add_column(sa.Column("prompt_text", sa.Text, nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("label", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("arm", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("arm")
        batch.drop_column("label")
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_column("prompt_text")
        batch.drop_column("prompt_path")
    op.drop_index("ix_eval_results_agent_version", "eval_results")
    op.drop_table("eval_results")
    op.drop_index("ix_label_history_agent_label", "label_history")
    op.drop_table("label_history")
    op.drop_table("agent_labels")
