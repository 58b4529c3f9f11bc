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
    text,
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
    # the label that chose the version this run executes, and the canary arm of its split
    # (`stable` or `canary`); both empty when the run named no label (migration 0012)
    Column("label", String(64), nullable=False, server_default=""),
    Column("arm", String(16), nullable=False, server_default=""),
    # (finished_at - created_at) * 1000, set with finished_at: percentiles read in index order
    Column("latency_ms", Float, nullable=True),
    # approvals requested by the run (projected with approval.requested): "with a person"
    Column("asked", Integer, nullable=False, server_default="0"),
    # a delegated run (steward/orchestration/): the run that delegated to it, the root of
    # its tree and its depth below the root; NULL, NULL, 0 for a root (migration 0015)
    Column("parent_run_id", String(64), nullable=True),
    Column("root_run_id", String(64), nullable=True),
    Column("hop", Integer, nullable=False, server_default="0"),
    Index("ix_runs_agent_created", "agent", "created_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_created_id", "created_at", "id"),
    Index("ix_runs_status_created", "status", "created_at"),
    # the fleet figures (store/stats.py) read these indexes alone: counts by status, and
    # latency percentiles walked in order, for one agent or all (migration 0014)
    Index("ix_runs_agent_status", "agent", "status", "created_at", "asked"),
    Index("ix_runs_status_asked", "status", "created_at", "asked"),
    Index("ix_runs_agent_day", "agent", "created_at", "status", "latency_ms"),
    Index("ix_runs_day", "created_at", "status", "latency_ms"),
    Index("ix_runs_agent_latency", "agent", "latency_ms", "created_at"),
    Index("ix_runs_latency", "latency_ms", "created_at"),
    # runs below a root only: roots (most runs) keep it NULL and are never looked up by it,
    # so they add nothing to this index and nothing to their inserts' commits
    Index(
        "ix_runs_root",
        "root_run_id",
        "created_at",
        sqlite_where=text("root_run_id IS NOT NULL"),
        postgresql_where=text("root_run_id IS NOT NULL"),
    ),
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
    # the prompt file the spec names (`prompt_file`) and its text: part of the version
    Column("prompt_path", Text, nullable=True),
    Column("prompt_text", Text, nullable=True),
)

# Labels (production, staging, any name) point an agent at a version; a label may send a
# share of runs to a canary version. Every move is a row of label_history and an event in
# the audit chain (store/labels.py).
agent_labels = Table(
    "agent_labels",
    metadata,
    Column("agent", String(64), primary_key=True),
    Column("label", String(64), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("canary_version", String(64), nullable=True),
    Column("canary_percent", Integer, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

label_history = Table(
    "label_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent", String(64), nullable=False),
    Column("label", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("previous", String(64), nullable=True),
    Column("canary_version", String(64), nullable=True),
    Column("canary_percent", Integer, nullable=False, server_default="0"),
    Column("action", String(16), nullable=False),  # promote | override | rollback | canary
    Column("by", String(128), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("eval_result", String(64), nullable=True),
    Column("at", Float, nullable=False),
    Index("ix_label_history_agent_label", "agent", "label", "id"),
)

# An evaluation of one agent version on one suite (evals/): what promotion checks.
eval_results = Table(
    "eval_results",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("agent", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("suite", String(64), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("required_passed", Integer, nullable=False),
    Column("required_total", Integer, nullable=False),
    Column("scored_rate", Float, nullable=True),
    Column("summary", Text, nullable=False),  # the result JSON (evals/results.py)
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_eval_results_agent_version", "agent", "version", "suite"),
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

# The ledger summed by agent, model, day and tags, upserted with each ledger row
# (store/projections.py): cost reports and stats read a row per group, not per call.
cost_days = Table(
    "cost_days",
    metadata,
    Column("agent", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("tags", Text, primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("estimated", Integer, nullable=False),
    Index("ix_cost_days_day", "day"),
)

# Facts of calls for the fleet figures, projected with their events (store/projections.py)
# so stats never decode the journal's JSON: a succeeded tool call (kind "tool", name the
# tool, value its latency in ms) and a denied call (kind "deny", name the rule). Each row
# carries its run's agent and creation time (the stats window is over runs).
call_facts = Table(
    "call_facts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("run_created", Float, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("name", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_call_facts_agent", "kind", "agent", "name", "value", "run_created", "ts"),
    Index("ix_call_facts_all", "kind", "name", "value", "run_created", "ts"),
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
    Column("key_id", String(32), nullable=True),  # NULL for a single sign-on session
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("principal_id", String(32), nullable=True),  # single sign-on: the person
    Column("role", String(16), nullable=True),  # single sign-on: the role given at sign-in
    Index("ix_console_sessions_key", "key_id"),
)

# Single sign-on: the identity provider's stable id of a person (issuer, subject) -> the
# principal they are in steward (one person, whether signed in by SSO or holding keys).
sso_identities = Table(
    "sso_identities",
    metadata,
    Column("issuer", String(255), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("principal_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_sso_identities_principal", "principal_id"),
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

# Drift monitors (monitor/): a series' chart state per agent, version and metric (with the
# ts of the last event folded into it), and the id of the last journal event the monitor
# folded, saved in the same transaction: where a restarted monitor goes on from.
monitor_state = Table(
    "monitor_state",
    metadata,
    Column("agent", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("state", Text, nullable=False),
    Column("previous_version", String(64), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("through_ts", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

monitor_cursor = Table(
    "monitor_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("event_id", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A budget account's settled spend, one row per account: settling folds a reservation's
# rows into it, so an account's total is one row plus its open holds, however much it
# has spent (summing every settled row made each reservation cost more than the last).
limit_totals = Table(
    "limit_totals",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("amount", Float, nullable=False),
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
