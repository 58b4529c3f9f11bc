"""Scaling: the journal writer's one-round-trip append on PostgreSQL (store/chain_pg.py),
a function that advances the chain head from where the writer expects it and inserts the
batch's rows, or raises serialization_failure (40001) when another transaction appended
first (nothing of the batch is written then; nothing on SQLite); and `limit_totals`, a
budget account's settled spend in one row (store/limits.py).

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0014"
branch_labels = None
depends_on = None

_APPEND = """
CREATE OR REPLACE FUNCTION steward_append_events(
    from_id bigint, from_hash text,
    ids bigint[], run_ids text[], types text[], tss float8[], datas text[],
    prev_hashes text[], hashes text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(ids);
BEGIN
    UPDATE chain_head SET last_id = ids[n], last_hash = hashes[n]
     WHERE id = 1 AND last_id = from_id AND last_hash = from_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the chain head moved: another transaction appended first'
            USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO events (id, run_id, type, ts, data, prev_hash, hash)
    SELECT * FROM unnest(ids, run_ids, types, tss, datas, prev_hashes, hashes);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND)
    op.create_table(
        "limit_totals",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("amount", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_totals")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS steward_append_events("
            "bigint, text, bigint[], text[], text[], float8[], text[], text[], text[])"
        )
