"""What a reviewer needs to decide one approval, read from the run's journal: the request
that started the run, the tool results that led to the call, what the agent said with it,
the gate's decision (rule, reason, risk), the tool's effect and data classes, every
argument with where its value came from, and, for an edit, the diff against the proposal
with the identifiers it changes (runtime/approvals.is_identifier decides which)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steward.core.decision import Verdict
from steward.core.events import (
    ApprovalDecided,
    GateDecided,
    ModelResponded,
    ToolCallProposed,
    ToolFailed,
    ToolSucceeded,
)
from steward.runtime.agent import AgentRuntime
from steward.runtime.approvals import ArgumentChange, argument_changes, is_identifier
from steward.store.approvals import ApprovalRow
from steward.store.database import Database
from steward.store.runs import chains, get_run, read_journal

REQUEST_CHARS = 4000  # the run's input beyond this is on the run page


@dataclass(frozen=True, slots=True)
class Argument:
    key: str
    value: Any
    source: str  # user | tool | model | config | human, or "" when not traced
    identifier: bool


@dataclass(frozen=True, slots=True)
class LedUp:
    """A tool call that ran before this one in the run, and what it returned."""

    tool: str
    arguments: dict[str, Any]
    result: Any


@dataclass(frozen=True, slots=True)
class Card:
    approval: ApprovalRow
    request: str
    request_cut: bool
    agent_said: str
    rules: tuple[str, ...]
    reasons: tuple[tuple[str, str], ...]  # (code, message) of the decision that held it
    risk: float | None
    effect: str
    data_classes: tuple[str, ...]
    arguments: tuple[Argument, ...]
    led_up: tuple[LedUp, ...]
    changes: tuple[ArgumentChange, ...] = field(default=())  # of a draft edit, if any
    # the agents that led here, root first, when a delegation did (steward/orchestration/)
    chain: tuple[str, ...] = ()

    @property
    def identifier_changes(self) -> tuple[ArgumentChange, ...]:
        return tuple(c for c in self.changes if c.identifier)


def build_card(
    db: Database,
    approval: ApprovalRow,
    agent: AgentRuntime | None,
    draft: dict[str, Any] | None = None,
) -> Card:
    """One card. `agent` gives the tool's effect and data classes (None when the server
    does not load that agent); `draft` is an edit to diff against the proposal."""
    run = get_run(db, approval.run_id)
    proposed: ToolCallProposed | None = None
    said = ""
    decision: GateDecided | None = None
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    led_up: list[LedUp] = []
    for entry in read_journal(db, approval.run_id):
        event = entry.event
        if isinstance(event, ModelResponded) and proposed is None:
            if event.response.text.strip():
                said = event.response.text.strip()
        elif isinstance(event, ToolCallProposed):
            calls[event.key] = (event.call.name, event.call.arguments)
            if event.key == approval.key:
                proposed = event
        elif isinstance(event, GateDecided) and event.key == approval.key:
            if event.decision.verdict is Verdict.REVIEW or decision is None:
                decision = event
        elif isinstance(event, ToolSucceeded) and proposed is None and event.key in calls:
            name, arguments = calls[event.key]
            led_up.append(LedUp(name, arguments, event.result))
    sources = {k: str(v) for k, v in proposed.sources.items()} if proposed else {}
    tool = agent.tools.get(approval.tool) if agent is not None else None
    held = decision.decision if decision is not None else None
    return Card(
        approval=approval,
        request=run.input[:REQUEST_CHARS],
        request_cut=len(run.input) > REQUEST_CHARS,
        agent_said=said,
        rules=held.rule_ids if held else (),
        reasons=tuple((r.code, r.message) for r in held.reasons) if held else (),
        risk=held.risk if held else None,
        effect=tool.effect.value if tool is not None else "",
        data_classes=tuple(sorted(d.value for d in tool.data_classes)) if tool else (),
        arguments=tuple(
            Argument(k, v, sources.get(k, ""), is_identifier(k, v))
            for k, v in approval.arguments.items()
        ),
        led_up=tuple(led_up),
        changes=tuple(argument_changes(approval.arguments, draft)) if draft is not None else (),
        chain=chains(db, [approval.run_id]).get(approval.run_id, ()) if run.root_run_id else (),
    )


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation that led to a held call, in the run's order."""

    who: str  # person | agent | tool | policy | reviewer
    label: str
    text: str = ""
    value: Any = None  # a proposed call's arguments, or a tool's result
    shown: bool = False  # has a value to show (a result may itself be null)
    held: bool = False  # the call this approval holds


def conversation(db: Database, approval: ApprovalRow) -> tuple[Turn, ...]:
    """Everything the agent saw and said after the request (which the card shows) up to
    the held call: each of its turns (text and proposed calls), what policy and earlier
    reviewers decided, and every tool's result or error; it ends at the held call."""
    turns: list[Turn] = []
    for entry in read_journal(db, approval.run_id):
        event = entry.event
        if isinstance(event, ModelResponded) and event.response.text.strip():
            turns.append(Turn("agent", f"The agent (step {event.step})", event.response.text))
        elif isinstance(event, ToolCallProposed):
            held = event.key == approval.key
            label = f"{'Proposes the held call' if held else 'Proposes'} {event.call.name}"
            turns.append(Turn("agent", label, value=event.call.arguments, shown=True, held=held))
            if held:
                break
        elif isinstance(event, GateDecided) and event.decision.verdict is Verdict.DENY:
            reason = event.decision.reasons[0].message if event.decision.reasons else ""
            turns.append(Turn("policy", f"Policy denied {event.tool}", reason))
        elif isinstance(event, ApprovalDecided) and event.by:
            turns.append(Turn("reviewer", f"{event.by} {event.outcome} a call", event.comment))
        elif isinstance(event, ToolSucceeded):
            turns.append(Turn("tool", f"{event.tool} returned", value=event.result, shown=True))
        elif isinstance(event, ToolFailed):
            turns.append(Turn("tool", f"{event.tool} failed", f"{event.code}: {event.message}"))
    return tuple(turns)
