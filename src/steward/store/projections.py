"""Projections: the `runs` and `approvals` tables follow from events, updated in the same
transaction as the events, so a reader never sees one without the other.

Plain SQL through the DBAPI, like the chain append: these run inside every commit that
carries a run's start, wait or finish.
"""

from __future__ import annotations

import json
from typing import Any

from steward.core import events as ev
from steward.core.dispatch import EventHandlers
from steward.core.events import Event, RunStatus

_COST = (
    "INSERT INTO cost_ledger (run_id, agent, tags, model, day, ts, input_tokens, output_tokens,"
    " cached_input_tokens, cost_usd, estimated) SELECT id, agent, tags, ?, ?, ?, ?, ?, ?, ?, ?"
    " FROM runs WHERE id = ?"
)
_INSERT_RUN = (
    "INSERT INTO runs (id, agent, agent_version, status, input, output, reason_code, reason,"
    " steps, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', '', '', 0, ?, ?, ?)"
)
# A queued run's row is there already: it starts running, keeping when it was created.
_START_RUN = (
    _INSERT_RUN
    + " ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
)
# A finished run stays finished: the first finish stands (a cancel may race a finish).
_RESUME = "UPDATE runs SET status = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL"
_WAIT = (
    "UPDATE runs SET status = ?, reason_code = ?, reason = ?, steps = ?, updated_at = ?"
    " WHERE id = ? AND finished_at IS NULL"
)
_FINISH = (
    "UPDATE runs SET status = ?, output = ?, confidence = ?, reason_code = ?, reason = ?,"
    " steps = ?, updated_at = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL"
)
_REQUEST = (
    "INSERT INTO approvals (id, run_id, call_id, agent, tool, arguments, call_hash, status,"
    " reason, requested_at, expires_at, comment) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, '')"
)
_USE = "UPDATE approvals SET used_at = ? WHERE id = ?"

Projected = tuple[str, tuple[Any, ...]]

# project(run_id, event, ts): the statement (qmark style) and parameters that project one
# event, or None. The receiver is the run id; the argument the commit's timestamp.
project: EventHandlers[str, [float], Projected | None] = EventHandlers("store.projections")
# Decided approvals are projected by the service that decides them (store/approvals.py),
# in the same transaction as their event; the rest is journal and audit only.
project.ignore(
    ev.ModelFailed, ev.ModelBreakerOpened, ev.ModelBreakerClosed, ev.ToolCallProposed,
    ev.GateDecided, ev.RateSlotTaken, ev.ApprovalDecided, ev.ToolStarted, ev.ToolFailed,
    ev.ResultScanned, ev.BreakerTripped, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.McpPinChanged, ev.FeedbackGiven,
)  # fmt: skip


def _run_row(
    run_id: str, event: ev.RunStarted | ev.RunQueued, status: RunStatus, ts: float
) -> tuple[Any, ...]:
    tags = json.dumps(event.tags, sort_keys=True)
    return (run_id, event.agent, event.agent_version, status.value, event.input, tags, ts, ts)


@project.on(ev.RunQueued)
def _queued(run_id: str, event: ev.RunQueued, ts: float) -> Projected:
    return _INSERT_RUN, _run_row(run_id, event, RunStatus.QUEUED, ts)


@project.on(ev.RunStarted)
def _started(run_id: str, event: ev.RunStarted, ts: float) -> Projected:
    return _START_RUN, _run_row(run_id, event, RunStatus.RUNNING, ts)


@project.on(ev.RunResumed)
def _resumed(run_id: str, event: ev.RunResumed, ts: float) -> Projected:
    return _RESUME, (RunStatus.RUNNING.value, ts, run_id)


@project.on(ev.RunWaiting)
def _waiting(run_id: str, event: ev.RunWaiting, ts: float) -> Projected:
    return _WAIT, (
        RunStatus.WAITING.value,
        "approval.pending",
        event.reason,
        event.steps,
        ts,
        run_id,
    )


@project.on(ev.RunFinished)
def _finished(run_id: str, event: ev.RunFinished, ts: float) -> Projected:
    return _FINISH, (event.status.value, event.output, event.confidence, event.reason_code,
                     event.reason, event.steps, ts, ts, run_id)  # fmt: skip


@project.on(ev.ApprovalRequested)
def _requested(run_id: str, event: ev.ApprovalRequested, ts: float) -> Projected:
    arguments = json.dumps(event.arguments, sort_keys=True)
    return _REQUEST, (event.approval_id, run_id, event.key, event.agent, event.tool, arguments,
                      event.call_hash, event.reason, ts, event.expires_at)  # fmt: skip


@project.on(ev.ApprovalUsed)
def _used(run_id: str, event: ev.ApprovalUsed, ts: float) -> Projected:
    return _USE, (ts, event.approval_id)


# cost rows take the agent and tags from the run they belong to
@project.on(ev.ModelResponded)
def _model_cost(run_id: str, event: ev.ModelResponded, ts: float) -> Projected:
    usage = event.response.usage
    return _COST, (event.response.model, int(ts // 86400), ts, usage.input_tokens, usage.output_tokens,
                   usage.cached_input_tokens, usage.cost_usd, usage.estimated, run_id)  # fmt: skip


@project.on(ev.ToolSucceeded)
def _tool_cost(run_id: str, event: ev.ToolSucceeded, ts: float) -> Projected | None:
    if event.cost_usd <= 0:
        return None
    return _COST, (f"tool:{event.tool}", int(ts // 86400), ts, 0, 0, 0, event.cost_usd, False,
                   run_id)  # fmt: skip


# The types with a projection, for the commit path to skip the rest with one set lookup.
PROJECTED: frozenset[type[Event]] = project.handled
