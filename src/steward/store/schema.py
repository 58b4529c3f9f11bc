"""Tables (SQLAlchemy Core). The `events` table is the journal and the audit chain at once:
every row carries the SHA-256 of the row before it. `runs` and `approvals` are projections
of events, written in the same transaction as the events that change them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

# BigInteger on PostgreSQL, INTEGER on SQLite (so the rowid alias stays fast).
Id = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("run_id", String(64), nullable=True),
    Column("type", String(40), nullable=False),
    Column("ts", Float, nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_run_id", "run_id", "id"),
    Index("ix_events_type_ts", "type", "ts"),
)

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Id, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("agent", String(64), nullable=False),
    Column("agent_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False, default=""),
    Column("confidence", Float, nullable=True),
    Column("reason_code", String(64), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("steps", Integer, nullable=False, default=0),
    Column("tags", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_runs_agent_created", "agent", "created_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_created_id", "created_at", "id"),
    Index("ix_runs_status_created", "status", "created_at"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("tool", String(128), nullable=False),
    Column("arguments", Text, nullable=False),
    Column("call_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Column("decided_arguments", Text, nullable=True),
    Column("used_at", Float, nullable=True),
    Index("ix_approvals_status", "status", "requested_at"),
    Index("ix_approvals_run", "run_id", "call_id"),
)

agent_versions = Table(
    "agent_versions",
    metadata,
    Column("agent", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("spec_text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

cost_ledger = Table(
    "cost_ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("tags", Text, nullable=False),
    Column("model", String(128), nullable=False),
    Column("day", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cached_input_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    # the provider reported no usage: the tokens were counted locally (models.tokens)
    Column("estimated", Boolean, nullable=False, server_default=false()),
    Index("ix_cost_ledger_agent_day", "agent", "day"),
    Index("ix_cost_ledger_run", "run_id"),
)

agents = Table(
    "agents",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("comment", Text, nullable=False),
)

# Who holds keys: a person or an agent, with a unique name. Four eyes compares these
# ids, never key names or labels: every key of one principal is the same identity.
principals = Table(
    "principals",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # person | agent
    Column("agent", String(64), nullable=True),  # an agent principal's agent
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# API keys: only a SHA-256 of each secret is kept (see steward.security.keys).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal_id", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("agent", String(64), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_api_keys_principal", "principal_id"),
)

# Console sign-ins: the cookie holds a random token; the table holds its SHA-256.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_console_sessions_key", "key_id"),
)

GENESIS_HASH = "0" * 64

# Shared limits (store/limits.py): one row per rate slot taken and per budget amount held
# or spent, counted under a lock so every process of a deployment sees the same numbers.
limit_usage = Table(
    "limit_usage",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Column("amount", Float, nullable=False),
    Column("hold", String(64), nullable=True),  # set while a reservation is not settled
    # a rate slot's own id: a step retried after a fault whose commit's fate was unknown
    # finds the slot it already took (store/limits.py)
    Column("slot_token", String(32), nullable=True),
    Index("ix_limit_usage_key_at", "key", "at"),
    Index("ix_limit_usage_hold", "hold"),
)

# Pinned MCP tool definitions (steward/mcp/, store/mcp_pins.py): per agent and tool, the
# SHA-256 of the definition steward trusts, and of the one the server shows now. A tool
# whose shown definition is not the trusted one is quarantined until an admin approves it.
mcp_pins = Table(
    "mcp_pins",
    metadata,
    Column("agent", String(64), primary_key=True),
    Column("tool", String(255), primary_key=True),  # server.tool
    Column("status", String(16), nullable=False),  # pinned | quarantined
    Column(
        "reason", String(64), nullable=False
    ),  # "" or mcp.definition_changed | mcp.tool_poisoning
    Column("approved_sha256", String(64), nullable=True),
    Column("seen_sha256", String(64), nullable=False),
    Column("seen_definition", Text, nullable=False),  # canonical JSON of what the server shows
    Column("detail", Text, nullable=False),  # the finding, for a poisoned description
    Column("first_seen", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)
