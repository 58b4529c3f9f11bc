"""Fleet figures in SQL: call facts (tool latencies, denials by rule) projected with their
events, runs' latency and approvals asked, the cost ledger summed by day (cost_days),
covering indexes for stats and the overview pages, and full-text search over runs'
input and answer (SQLite FTS5 when the library has it; a GIN index on PostgreSQL).

Existing journals are backfilled: facts from the events' JSON, the search index from runs.

Revision ID: 0014
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

_BACKFILL = {
    "sqlite": {
        "tool": ("json_extract(e.data, '$.tool')", "json_extract(e.data, '$.latency_ms')",
                 "1 = 1"),
        "deny": ("COALESCE(json_extract(e.data, '$.decision.rule_ids[0]'),"
                 " json_extract(e.data, '$.decision.reasons[0].code'), 'deny')", "0.0",
                 "json_extract(e.data, '$.decision.verdict') = 'deny'"),
    },
    "postgresql": {
        "tool": ("(e.data::json ->> 'tool')", "(e.data::json ->> 'latency_ms')::float", "1 = 1"),
        "deny": ("COALESCE(e.data::json #>> '{decision,rule_ids,0}',"
                 " e.data::json #>> '{decision,reasons,0,code}', 'deny')", "0.0",
                 "(e.data::json #>> '{decision,verdict}') = 'deny'"),
    },
}  # fmt: skip
_RUN_INDEXES = {
    "ix_runs_agent_status": ["agent", "status", "created_at", "asked"],
    "ix_runs_status_asked": ["status", "created_at", "asked"],
    "ix_runs_agent_day": ["agent", "created_at", "status", "latency_ms"],
    "ix_runs_day": ["created_at", "status", "latency_ms"],
    "ix_runs_agent_latency": ["agent", "latency_ms", "created_at"],
    "ix_runs_latency": ["latency_ms", "created_at"],
}
_TYPES = {"tool": "tool.succeeded", "deny": "gate.decided"}

# SQLite: an external-content FTS5 table over runs, kept by triggers
_FTS = [
    "CREATE VIRTUAL TABLE runs_fts USING fts5(input, output, content='runs', content_rowid='rowid')",
    "CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN"
    " INSERT INTO runs_fts (rowid, input, output) VALUES (new.rowid, new.input, new.output); END",
    "CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN"
    " INSERT INTO runs_fts (runs_fts, rowid, input, output)"
    " VALUES ('delete', old.rowid, old.input, old.output); END",
    "CREATE TRIGGER runs_fts_update AFTER UPDATE OF input, output ON runs BEGIN"
    " INSERT INTO runs_fts (runs_fts, rowid, input, output)"
    " VALUES ('delete', old.rowid, old.input, old.output);"
    " INSERT INTO runs_fts (rowid, input, output) VALUES (new.rowid, new.input, new.output); END",
    "INSERT INTO runs_fts (runs_fts) VALUES ('rebuild')",
]
_PG_SEARCH = (
    "CREATE INDEX ix_runs_search ON runs USING gin (to_tsvector('simple', input || ' ' || output))"
)


def _has_fts5(connection: sa.Connection) -> bool:
    try:
        connection.exec_driver_sql("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except sa.exc.DBAPIError:
        return False
    connection.exec_driver_sql("DROP TABLE temp.fts5_probe")
    return True


def upgrade() -> None:
    op.create_table(
        "call_facts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("run_created", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
    )
    connection = op.get_bind()
    dialect = connection.dialect.name
    forms = _BACKFILL.get(dialect, _BACKFILL["postgresql"])
    for kind, (name, value, where) in forms.items():
        connection.exec_driver_sql(
            "INSERT INTO call_facts (run_id, agent, run_created, kind, name, ts, value)"
            f" SELECT e.run_id, r.agent, r.created_at, '{kind}', {name}, e.ts, {value}"
            f" FROM events e JOIN runs r ON r.id = e.run_id"
            f" WHERE e.type = '{_TYPES[kind]}' AND {where} ORDER BY e.id"
        )
    facts = ["kind", "agent", "name", "value", "run_created", "ts"]
    op.create_index("ix_call_facts_agent", "call_facts", facts)
    op.create_index("ix_call_facts_all", "call_facts", [c for c in facts if c != "agent"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("latency_ms", sa.Float, nullable=True))
        batch.add_column(sa.Column("asked", sa.Integer, nullable=False, server_default="0"))
    connection.exec_driver_sql(
        "UPDATE runs SET latency_ms = (finished_at - created_at) * 1000.0"
        " WHERE finished_at IS NOT NULL"
    )
    connection.exec_driver_sql(
        "UPDATE runs SET asked = (SELECT count(*) FROM approvals WHERE approvals.run_id = runs.id)"
        " WHERE id IN (SELECT run_id FROM approvals)"
    )
    op.create_table(
        "cost_days",
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("tags", sa.Text, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("estimated", sa.Integer, nullable=False),
    )
    connection.exec_driver_sql(
        "INSERT INTO cost_days (agent, day, model, tags, calls, input_tokens, output_tokens,"
        " cost_usd, estimated) SELECT agent, day, model, tags, count(*), sum(input_tokens),"
        " sum(output_tokens), sum(cost_usd), sum(CASE WHEN estimated THEN 1 ELSE 0 END)"
        " FROM cost_ledger GROUP BY agent, day, model, tags"
    )
    op.create_index("ix_cost_days_day", "cost_days", ["day"])
    for name, columns in _RUN_INDEXES.items():
        op.create_index(name, "runs", columns)
    if dialect == "sqlite":
        if _has_fts5(connection):
            for statement in _FTS:
                connection.exec_driver_sql(statement)
    else:
        connection.exec_driver_sql(_PG_SEARCH)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for trigger in ("runs_fts_insert", "runs_fts_delete", "runs_fts_update"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        connection.exec_driver_sql("DROP TABLE IF EXISTS runs_fts")
    else:
        connection.exec_driver_sql("DROP INDEX IF EXISTS ix_runs_search")
    op.drop_index("ix_cost_days_day", table_name="cost_days")
    op.drop_table("cost_days")
    for name in _RUN_INDEXES:
        op.drop_index(name, table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("asked")
        batch.drop_column("latency_ms")
    op.drop_index("ix_call_facts_all", table_name="call_facts")
    op.drop_index("ix_call_facts_agent", table_name="call_facts")
    op.drop_table("call_facts")
