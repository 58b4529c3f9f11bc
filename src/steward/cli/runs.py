"""`steward run`, `steward runs list|show|resume|cancel`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from steward.cli.context import DbOption, console, handled, journal_for, open_db, run_async
from steward.cli.identity import KeyOption, acting_as
from steward.cli.render import compact, short, status, when
from steward.core import events as ev
from steward.core.dispatch import EventHandlers
from steward.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalUsed,
    BreakerTripped,
    Event,
    GateDecided,
    ModelBreakerClosed,
    ModelBreakerOpened,
    ModelFailed,
    ModelResponded,
    ResultScanned,
    RunFinished,
    RunResumed,
    RunStarted,
    RunWaiting,
    ToolCallProposed,
    ToolFailed,
    ToolStarted,
    ToolSucceeded,
)
from steward.runtime import Runner, RunResult, build_agent
from steward.runtime.cancel import cancel_run
from steward.runtime.catalog import agent_for_run
from steward.security.keys import Permission
from steward.spec import load_spec
from steward.store.runs import get_run, list_runs, read_journal

app = typer.Typer(help="Inspect and resume runs.", no_args_is_help=True)


def print_result(result: RunResult) -> None:
    console.print(
        f"run [bold]{result.run_id}[/] {status(result.status.value)} after {result.steps} step(s)"
    )
    if result.output:
        console.print(f"  answer: {result.output}", highlight=False)
    if result.reason:
        console.print(f"  reason: [{result.reason_code}] {result.reason}", highlight=False)


def run(
    file: Path = typer.Argument(..., help="Agent spec (YAML)."),
    text: str = typer.Option(..., "--input", "-i", help="The request for the agent."),
    stream: bool = typer.Option(False, "--stream", help="Print the model's text as it comes."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """Run an agent once on one input (with a key, the run records who started it, and
    that principal may not decide its approvals)."""
    with handled():
        loaded = load_spec(file)
        agent = build_agent(loaded)
        database = open_db(db, create=True)
        tags = (
            acting_as(database, key, Permission.START_RUN, agent.name).starter_tags() if key else {}
        )

        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        with journal_for(database) as journal:
            runner = Runner(database, journal)
            result = run_async(
                lambda: runner.run(agent, text, tags=tags, on_text=show if stream else None)
            )
        if stream:
            sys.stdout.write("\n")
        print_result(result)


@app.command("list")
def list_command(
    agent: str | None = typer.Option(None, help="Only this agent."),
    state: str | None = typer.Option(None, "--status", help="Only runs in this status."),
    limit: int = typer.Option(20, min=1, max=1000),
    db: str | None = DbOption,
) -> None:
    """The newest runs."""
    with handled():
        rows = list_runs(open_db(db), agent=agent, status=state, limit=limit)
        table = Table(title=f"{len(rows)} run(s)")
        for column in ("run", "agent", "status", "started", "steps"):
            table.add_column(column, no_wrap=True)
        table.add_column("input")
        table.add_column("reason")
        for row in rows:
            table.add_row(
                row.id,
                row.agent,
                status(row.status),
                when(row.created_at),
                str(row.steps),
                short(row.input, 40),
                short(row.reason_code, 28),
            )
        console.print(table)


@app.command("show")
def show(run_id: str = typer.Argument(...), db: str | None = DbOption) -> None:
    """A run step by step: model turns, proposed calls, decisions, approvals, results."""
    with handled():
        database = open_db(db)
        row = get_run(database, run_id)
        console.print(
            f"[bold]{row.id}[/]  agent {row.agent}@{row.agent_version}  {status(row.status)}"
        )
        console.print(f"input: {short(row.input, 200)}", highlight=False)
        table = Table(show_lines=False)
        for column in ("#", "time", "event", "detail"):
            table.add_column(column, overflow="fold")
        start = row.created_at
        for entry in read_journal(database, run_id):
            table.add_row(
                str(entry.id),
                f"+{(entry.ts - start) * 1000:.1f}ms",
                entry.type,
                _detail(entry.event),
            )
        console.print(table)
        if row.output:
            console.print(f"answer: {row.output}", highlight=False)
        if row.reason:
            console.print(f"reason: [{row.reason_code}] {row.reason}", highlight=False)


def _detail(event: Event) -> str:
    return _details(None, event) or ""


# One line per event in `steward runs show`; the types a run's journal does not hold,
# or that add nothing to the event's name, print no detail.
_details: EventHandlers[None, [], str] = EventHandlers("cli.runs")
_details.ignore(
    ev.RunQueued, ev.RateSlotTaken, ev.BudgetThresholdCrossed, ev.AgentStateChanged,
    ev.KeyCreated, ev.KeyRevoked, ev.FeedbackGiven,
)  # fmt: skip


@_details.on(RunStarted)
def _run_started(_: None, event: RunStarted) -> str:
    return f"agent {event.agent}"


@_details.on(ModelResponded)
def _model_responded(_: None, event: ModelResponded) -> str:
    if event.response.tool_calls:
        return f"step {event.step}: proposes " + ", ".join(
            c.name for c in event.response.tool_calls
        )
    if event.response.cut_off:
        return f"step {event.step}: cut off (finish_reason {event.response.finish_reason})"
    return f"step {event.step}: answers (confidence {event.response.confidence})"


@_details.on(ModelFailed)
def _model_failed(_: None, event: ModelFailed) -> str:
    return f"step {event.step}: {event.model} attempt {event.attempt} failed [{event.code}] {event.message}"


@_details.on(ModelBreakerOpened)
def _model_breaker_opened(_: None, event: ModelBreakerOpened) -> str:
    return f"{event.endpoint} circuit opened after {event.failures} failures"


@_details.on(ModelBreakerClosed)
def _model_breaker_closed(_: None, event: ModelBreakerClosed) -> str:
    return f"{event.endpoint} circuit closed"


@_details.on(ToolCallProposed)
def _tool_call_proposed(_: None, event: ToolCallProposed) -> str:
    sources = ", ".join(f"{k}←{v.value}" for k, v in event.sources.items())
    return f"{event.call.name} {compact(event.call.arguments, 60)}" + (
        f" [{sources}]" if sources else ""
    )


@_details.on(GateDecided)
def _gate_decided(_: None, event: GateDecided) -> str:
    reasons = "; ".join(f"{r.code}: {r.message}" for r in event.decision.reasons)
    return f"{event.stage}: {status_word(event.decision.verdict.value)} {event.tool} — {reasons}"


@_details.on(ApprovalRequested)
def _approval_requested(_: None, event: ApprovalRequested) -> str:
    return f"approval {event.approval_id} requested for {event.tool}"


@_details.on(ApprovalDecided)
def _approval_decided(_: None, event: ApprovalDecided) -> str:
    return f"approval {event.approval_id} {event.outcome} by {event.by} {event.comment}".strip()


@_details.on(ApprovalUsed)
def _approval_used(_: None, event: ApprovalUsed) -> str:
    return f"approval {event.approval_id} used"


@_details.on(ToolStarted)
def _tool_started(_: None, event: ToolStarted) -> str:
    return f"{event.tool} started (attempt {event.attempt}, key {event.key})"


@_details.on(ToolSucceeded)
def _tool_succeeded(_: None, event: ToolSucceeded) -> str:
    return f"{event.tool} ok in {event.latency_ms:.1f}ms: {compact(event.result, 70)}"


@_details.on(ToolFailed)
def _tool_failed(_: None, event: ToolFailed) -> str:
    return f"{event.tool} failed [{event.code}] {event.message}"


@_details.on(ResultScanned)
def _result_scanned(_: None, event: ResultScanned) -> str:
    return f"{event.tool} {event.source} scanned: {', '.join(event.findings)} ({event.action})"


@_details.on(BreakerTripped)
def _breaker_tripped(_: None, event: BreakerTripped) -> str:
    return f"{event.tool} circuit opened after {event.failures} failures"


@_details.on(RunWaiting)
def _run_waiting(_: None, event: RunWaiting) -> str:
    return event.reason


@_details.on(RunResumed)
def _run_resumed(_: None, event: RunResumed) -> str:
    return event.reason


@_details.on(RunFinished)
def _run_finished(_: None, event: RunFinished) -> str:
    return f"{event.status.value} {event.reason_code}".strip()


def status_word(verdict: str) -> str:
    colours = {"allow": "green", "review": "yellow", "deny": "red", "transform": "cyan"}
    return f"[{colours.get(verdict, 'white')}]{verdict}[/]"


@app.command("resume")
def resume(run_id: str = typer.Argument(...), db: str | None = DbOption) -> None:
    """Resume a waiting or interrupted run from its journal."""
    with handled():
        database = open_db(db)
        agent = agent_for_run(database, run_id)
        with journal_for(database) as journal:
            result = run_async(lambda: Runner(database, journal).resume(agent, run_id))
        print_result(result)


@app.command("cancel")
def cancel(
    run_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the run and the audit)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """Cancel a waiting, queued or orphaned run: it finishes `cancelled`, and its pending
    approvals can no longer be decided."""
    with handled():
        database = open_db(db)
        by = acting_as(database, key, Permission.CANCEL_RUN).label
        with journal_for(database) as journal:
            row = cancel_run(database, journal, run_id, by=by, reason=reason)
        console.print(f"run [bold]{row.id}[/] {status(row.status)}", highlight=False)
        console.print(f"  reason: [{row.reason_code}] {row.reason}", highlight=False)
