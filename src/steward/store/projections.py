"""Projections: the `runs` and `approvals` tables follow from events, updated in the same
transaction as the events, so a reader never sees one without the other.

Plain SQL through the DBAPI, like the chain append: these run inside every commit that
carries a run's start, wait or finish.
"""

from __future__ import annotations

import json
from typing import Any

from steward.core import events as ev
from steward.core.decision import Decision, Verdict
from steward.core.dispatch import EventHandlers
from steward.core.events import Event, RunStatus

_COST = (
    "INSERT INTO cost_ledger (run_id, agent, tags, model, day, ts, input_tokens, output_tokens,"
    " cached_input_tokens, cost_usd, estimated) SELECT id, agent, tags, ?, ?, ?, ?, ?, ?, ?, ?"
    " FROM runs WHERE id = ?"
)
_INSERT_RUN = (
    "INSERT INTO runs (id, agent, agent_version, status, input, output, reason_code, reason,"
    " steps, tags, created_at, updated_at, label, arm, parent_run_id, root_run_id, hop)"
    " VALUES (?, ?, ?, ?, ?, '', '', '', 0, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    " steps = ?, updated_at = ?, finished_at = ?, latency_ms = (? - created_at) * 1000.0"
    " WHERE id = ? AND finished_at IS NULL"
)
_REQUEST = (
    "INSERT INTO approvals (id, run_id, call_id, agent, tool, arguments, call_hash, status,"
    " reason, requested_at, expires_at, comment) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, '')"
)
_ASKED = "UPDATE runs SET asked = asked + 1 WHERE id = ?"
# the ledger's sums by agent, model, day and tags (schema.cost_days), kept with each row
_COST_DAY = (
    "INSERT INTO cost_days (agent, day, model, tags, calls, input_tokens, output_tokens,"
    " cost_usd, estimated) SELECT agent, ?, ?, tags, 1, ?, ?, ?, ? FROM runs WHERE id = ?"
    " ON CONFLICT (agent, day, model, tags) DO UPDATE SET calls = cost_days.calls + 1,"
    " input_tokens = cost_days.input_tokens + excluded.input_tokens,"
    " output_tokens = cost_days.output_tokens + excluded.output_tokens,"
    " cost_usd = cost_days.cost_usd + excluded.cost_usd,"
    " estimated = cost_days.estimated + excluded.estimated"
)
_USE = "UPDATE approvals SET used_at = ? WHERE id = ?"
# a fact for the fleet figures (schema.call_facts), with its run's agent and creation time
_FACT = (
    "INSERT INTO call_facts (run_id, agent, run_created, kind, name, ts, value)"
    " SELECT id, agent, created_at, ?, ?, ?, ? FROM runs WHERE id = ?"
)


def _facts(also: str) -> str:
    """PostgreSQL (store/chain_pg.py): a run of consecutive _FACT rows as one statement,
    from arrays of their parameters in _FACT's order; the same rows, in the same order.
    `also`: more FROM items (a one-row relation gating the insert)."""
    return (
        "INSERT INTO call_facts (run_id, agent, run_created, kind, name, ts, value)"
        " SELECT r.id, r.agent, r.created_at, f.kind, f.name, f.ts, f.value"
        " FROM unnest(%b::text[], %b::text[], %b::float8[], %b::float8[], %b::text[])"
        " WITH ORDINALITY AS f(kind, name, ts, value, run_id, n)"
        f" JOIN runs r ON r.id = f.run_id{also} ORDER BY f.n"
    )


# A statement -> its many-rows form, whose parameters are the rows' columns as arrays: one
# statement per event cost a round trip (every tool call has a fact).
FACT = _FACT
MANY: dict[str, str] = {_FACT: _facts("")}
# The same, landing only if the one-row relation `moved` has its row (chain_pg.py).
FACTS_IF_MOVED = _facts(", moved")

Projected = tuple[str, tuple[Any, ...]]

# project(run_id, event, ts): the statements (qmark style) and parameters that project one
# event, or None. The receiver is the run id; the argument the commit's timestamp.
project: EventHandlers[str, [float], Projected | list[Projected] | None] = EventHandlers(
    "store.projections"
)
# Decided approvals are projected by the service that decides them (store/approvals.py),
# in the same transaction as their event; the rest is journal and audit only.
project.ignore(
    ev.ModelFailed, ev.ModelBreakerOpened, ev.ModelBreakerClosed, ev.ToolCallProposed,
    ev.RateSlotTaken, ev.ApprovalDecided, ev.ToolStarted, ev.ToolFailed,
    ev.ResultScanned, ev.BreakerTripped, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven, ev.PersonSignedIn, ev.DriftAlarmed,
    ev.LabelMoved, ev.McpPinChanged,
)  # fmt: skip


def _run_row(
    run_id: str, event: ev.RunStarted | ev.RunQueued, status: RunStatus, ts: float
) -> tuple[Any, ...]:
    tags = json.dumps(event.tags, sort_keys=True)
    return (run_id, event.agent, event.agent_version, status.value, event.input, tags, ts, ts,
            event.label, event.arm, event.parent_run_id or None, event.root_run_id or None,
            event.hop)  # fmt: skip


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
                     event.reason, event.steps, ts, ts, ts, run_id)  # fmt: skip


@project.on(ev.ApprovalRequested)
def _requested(run_id: str, event: ev.ApprovalRequested, ts: float) -> list[Projected]:
    arguments = json.dumps(event.arguments, sort_keys=True)
    return [(_REQUEST, (event.approval_id, run_id, event.key, event.agent, event.tool, arguments,
                        event.call_hash, event.reason, ts, event.expires_at)),
            (_ASKED, (run_id,))]  # fmt: skip


@project.on(ev.ApprovalUsed)
def _used(run_id: str, event: ev.ApprovalUsed, ts: float) -> Projected:
    return _USE, (ts, event.approval_id)


def _costs(run_id: str, model: str, ts: float, tokens: tuple[int, int, int], cost: float,
           estimated: bool) -> list[Projected]:  # fmt: skip
    """A ledger row and its day's sums; both take the agent and tags from the run."""
    day = int(ts // 86400)
    return [(_COST, (model, day, ts, *tokens, cost, estimated, run_id)),
            (_COST_DAY, (day, model, tokens[0], tokens[1], cost, int(estimated), run_id))]  # fmt: skip


@project.on(ev.ModelResponded)
def _model_cost(run_id: str, event: ev.ModelResponded, ts: float) -> list[Projected]:
    usage = event.response.usage
    tokens = (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)
    return _costs(run_id, event.response.model, ts, tokens, usage.cost_usd, usage.estimated)


@project.on(ev.ToolSucceeded)
def _tool_done(run_id: str, event: ev.ToolSucceeded, ts: float) -> list[Projected]:
    fact = _FACT, ("tool", event.tool, ts, float(event.latency_ms), run_id)
    if event.cost_usd <= 0:
        return [fact]
    return [fact, *_costs(run_id, f"tool:{event.tool}", ts, (0, 0, 0), event.cost_usd, False)]


def denial_rule(decision: Decision) -> str:
    """The rule a denial is counted under: its first rule id, else its reason's code."""
    return decision.rule_ids[0] if decision.rule_ids else decision.primary_code


@project.on(ev.GateDecided)
def _decided(run_id: str, event: ev.GateDecided, ts: float) -> Projected | None:
    if event.decision.verdict is not Verdict.DENY:
        return None
    return _FACT, ("deny", denial_rule(event.decision), ts, 0.0, run_id)


# The types with a projection, for the commit path to skip the rest with one set lookup.
PROJECTED: frozenset[type[Event]] = project.handled
