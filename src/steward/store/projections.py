"""Projections: the `runs` and `approvals` tables follow from events, updated in the same
transaction as the events, so a reader never sees one without the other.

Plain SQL through the DBAPI, like the chain append: these run inside every commit that
carries a run's start, wait or finish.
"""

from __future__ import annotations

import json
from typing import Any

from steward.core.errors import StoreError
from steward.core.events import (
    ApprovalRequested,
    ApprovalUsed,
    ModelResponded,
    RunFinished,
    RunQueued,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
    ToolSucceeded,
)

_COST = (
    "INSERT INTO cost_ledger (run_id, agent, tags, model, day, ts, input_tokens, output_tokens,"
    " cached_input_tokens, cost_usd, estimated) SELECT id, agent, tags, ?, ?, ?, ?, ?, ?, ?, ?"
    " FROM runs WHERE id = ?"
)
_INSERT_RUN = (
    "INSERT INTO runs (id, agent, agent_version, status, input, output, reason_code, reason,"
    " steps, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', '', '', 0, ?, ?, ?)"
)
_SQL = {
    "run.queued": _INSERT_RUN,
    # A queued run's row is there already: it starts running, keeping when it was created.
    "run.started": _INSERT_RUN
    + " ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
    # A finished run stays finished: the first finish stands (a cancel may race a finish).
    "run.resumed": "UPDATE runs SET status = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL",
    "run.waiting": (
        "UPDATE runs SET status = ?, reason_code = ?, reason = ?, steps = ?,"
        " updated_at = ? WHERE id = ? AND finished_at IS NULL"
    ),
    "run.finished": (
        "UPDATE runs SET status = ?, output = ?, confidence = ?, reason_code = ?, reason = ?,"
        " steps = ?, updated_at = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL"
    ),
    "approval.requested": (
        "INSERT INTO approvals (id, run_id, call_id, agent, tool, arguments, call_hash, status,"
        " reason, requested_at, expires_at, comment) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, '')"
    ),
    "approval.used": "UPDATE approvals SET used_at = ? WHERE id = ?",
    # cost rows take the agent and tags from the run they belong to
    "model.responded": _COST,
    "tool.succeeded": _COST,
}
PROJECTED = frozenset(_SQL)


def _params(run_id: str, ts: float, event: object) -> tuple[Any, ...]:
    if isinstance(event, RunStarted | RunQueued):
        tags = json.dumps(event.tags, sort_keys=True)
        status = RunStatus.QUEUED if isinstance(event, RunQueued) else RunStatus.RUNNING
        return (
            run_id,
            event.agent,
            event.agent_version,
            status.value,
            event.input,
            tags,
            ts,
            ts,
        )
    if isinstance(event, RunResumed):
        return (RunStatus.RUNNING.value, ts, run_id)
    if isinstance(event, RunWaiting):
        return (RunStatus.WAITING.value, "approval.pending", event.reason, event.steps, ts, run_id)
    if isinstance(event, RunFinished):
        return (event.status.value, event.output, event.confidence, event.reason_code, event.reason,
                event.steps, ts, ts, run_id)  # fmt: skip
    if isinstance(event, ApprovalRequested):
        arguments = json.dumps(event.arguments, sort_keys=True)
        return (event.approval_id, run_id, event.key, event.agent, event.tool, arguments, event.call_hash,
                event.reason, ts, event.expires_at)  # fmt: skip
    if isinstance(event, ApprovalUsed):
        return (ts, event.approval_id)
    raise StoreError(f"no projection for {type(event).__name__}")


def projection(
    run_id: str, ts: float, type_: str, event: object
) -> tuple[str, tuple[Any, ...]] | None:
    """The statement (qmark style) and parameters that project one event, if any."""
    if isinstance(event, ModelResponded):
        usage = event.response.usage
        return _COST, (event.response.model, int(ts // 86400), ts, usage.input_tokens, usage.output_tokens,
                       usage.cached_input_tokens, usage.cost_usd, usage.estimated, run_id)  # fmt: skip
    if isinstance(event, ToolSucceeded):
        if event.cost_usd <= 0:
            return None
        return _COST, (f"tool:{event.tool}", int(ts // 86400), ts, 0, 0, 0, event.cost_usd, False,
                       run_id)  # fmt: skip
    return _SQL[type_], _params(run_id, ts, event)
