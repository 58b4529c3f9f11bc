"""`steward approvals list|approve|reject|answer|sweep`."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from steward.cli.context import DbOption, console, fail, handled, journal_for, open_db, run_async
from steward.cli.render import compact, status, when
from steward.cli.runs import print_result
from steward.core.errors import StewardError
from steward.runtime import Runner
from steward.runtime.catalog import agent_for_run
from steward.runtime.sweep import resume_expired
from steward.store.approvals import decide_approval, get_approval, list_approvals
from steward.store.database import Database
from steward.tools.builtin import ASK_HUMAN

app = typer.Typer(help="Decide calls that wait for a person.", no_args_is_help=True)


@app.command("list")
def list_command(
    state: str = typer.Option(
        "pending", "--status", help="pending, approved, rejected, expired or all."
    ),
    db: str | None = DbOption,
) -> None:
    """Approval requests (pending by default)."""
    with handled():
        rows = list_approvals(open_db(db), None if state == "all" else state)
        table = Table(title=f"{len(rows)} approval(s)")
        for column in ("approval", "run", "tool", "status", "expires"):
            table.add_column(column, no_wrap=True)
        table.add_column("arguments", overflow="fold")
        for row in rows:
            table.add_row(
                row.id,
                row.run_id,
                row.tool,
                status(row.status),
                when(row.expires_at),
                compact(row.arguments, 60),
            )
        console.print(table)


def _decide(
    db: Database,
    approval_id: str,
    approve: bool,
    by: str,
    comment: str,
    resume: bool,
    arguments: dict[str, Any] | None = None,
) -> None:
    with journal_for(db) as journal:
        row = decide_approval(
            db,
            approval_id,
            approve=approve,
            by=by,
            comment=comment,
            arguments=arguments,
            on_commit=journal.publish,
        )
        console.print(f"approval {row.id} {status(row.status)} by {by}")
        if not resume:
            return
        try:
            agent = agent_for_run(db, row.run_id)
        except StewardError as exc:
            console.print(f"[yellow]not resumed:[/] {exc}")
            return
        runner = Runner(db, journal)
        result = run_async(
            lambda: runner.resume(agent, row.run_id, f"approval {row.id} {row.status}")
        )
    print_result(result)


@app.command("approve")
def approve(
    approval_id: str = typer.Argument(...),
    by: str = typer.Option("cli", "--by", help="Who decides."),
    comment: str = typer.Option("", "--comment"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume the run now."),
    args: str | None = typer.Option(
        None,
        "--args",
        help="Approve with these arguments instead (JSON); policy decides them again.",
    ),
    db: str | None = DbOption,
) -> None:
    """Approve a pending call (as proposed, or with edited arguments) and resume its run."""
    with handled():
        edited: Any = None
        if args is not None:
            try:
                edited = json.loads(args)
            except json.JSONDecodeError as exc:
                fail(f"--args is not valid JSON: {exc.msg} at column {exc.colno}")
            if not isinstance(edited, dict):
                fail("--args must be a JSON object")
        _decide(open_db(db), approval_id, True, by, comment, resume, edited)


@app.command("reject")
def reject(
    approval_id: str = typer.Argument(...),
    comment: str = typer.Option(
        ..., "--comment", help="Why (shown to the agent and in the audit)."
    ),
    by: str = typer.Option("cli", "--by"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    db: str | None = DbOption,
) -> None:
    """Reject a pending call, with a comment, and resume its run."""
    with handled():
        _decide(open_db(db), approval_id, False, by, comment, resume)


@app.command("answer")
def answer(
    approval_id: str = typer.Argument(..., help="The pending question (an ask_human approval)."),
    text: str = typer.Argument(..., help="The answer the agent receives."),
    by: str = typer.Option("cli", "--by", help="Who answers."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume the run now."),
    db: str | None = DbOption,
) -> None:
    """Answer an agent's question (approve it with the answer as comment) and resume its run."""
    with handled():
        database = open_db(db)
        row = get_approval(database, approval_id)
        if row.tool != ASK_HUMAN:
            fail(
                f"approval {approval_id} is for a call of '{row.tool}', not a question; "
                "use `steward approvals approve` or `reject`"
            )
        if not text.strip():
            fail("the answer is empty")
        _decide(database, approval_id, True, by, text, resume)


@app.command("sweep")
def sweep(db: str | None = DbOption) -> None:
    """Expire approvals nobody decided in time and let their runs finish without them;
    resume runs still waiting behind approvals that were decided."""
    with handled():
        database = open_db(db)
        with journal_for(database) as journal:
            outcomes = run_async(lambda: resume_expired(database, journal))
        if not outcomes:
            console.print("no overdue approvals, and no run waiting behind a decided one")
        for outcome in outcomes:
            if isinstance(outcome, StewardError):
                console.print(f"[yellow]not resumed:[/] {outcome}")
            else:
                print_result(outcome)
