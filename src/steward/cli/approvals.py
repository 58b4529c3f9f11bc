"""`steward approvals list|approve|reject|answer|sweep`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from steward.cli.context import DbOption, console, fail, handled, journal_for, open_db, run_async
from steward.cli.identity import KeyOption, acting_as
from steward.cli.records import Record, approval_record
from steward.cli.render import Column, JsonOption, emit_json, listing, status, when
from steward.cli.runs import print_result, result_record
from steward.core.states import ApprovalStatus

if TYPE_CHECKING:
    from steward.engines.approvals import ApprovalService
    from steward.runtime import RunResult
    from steward.security.keys import Principal
    from steward.store.approvals import ApprovalRow
    from steward.store.database import Database

app = typer.Typer(help="Decide calls that wait for a person.", no_args_is_help=True)

# --status: an approval status, or `all`
StatusChoice = StrEnum(  # type: ignore[misc]
    "StatusChoice", [(s.name, s.value) for s in ApprovalStatus] + [("ALL", "all")]
)

APPROVAL_COLUMNS = (
    Column("id", "approval"),
    Column("run_id", "run"),
    Column("tool"),
    Column("status", show=status),
    Column("expires_at", "expires", show=when),
    Column("arguments", wrap=True),
)


@app.command("list")
def list_command(
    state: StatusChoice = typer.Option("pending", "--status", help="An approval status, or all."),
    limit: int = typer.Option(100, min=1, max=1000),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Approval requests, oldest first (pending by default; --json: an array of approval
    objects)."""
    with handled():
        from steward.store.approvals import list_approvals

        value = str(state.value)
        rows = list_approvals(open_db(db), None if value == "all" else value, limit)
        records = [approval_record(row) for row in rows]
        listing(records, APPROVAL_COLUMNS, title=f"{len(rows)} approval(s)", as_json=as_json)


def _decide(
    db: Database,
    token: str | None,
    resume: bool,
    decide: Callable[[ApprovalService, Principal], Awaitable[ApprovalRow]],
    as_json: bool = False,
) -> None:
    """Act as the key's principal through the runtime's approval service; the run
    resumes inline (also when the request is found expired), or not with --no-resume.
    --json: {"approval": {...}, "resumed": [run results]}."""
    from steward.core.errors import StewardError
    from steward.engines.approvals import ApprovalService
    from steward.engines.catalog import agent_for_run
    from steward.engines.embedded import EmbeddedEngine
    from steward.orchestration import Delegator
    from steward.runtime import Runner
    from steward.store.leases import holding

    who = acting_as(db, token)
    results: list[RunResult] = []
    with journal_for(db) as journal:
        runner = Runner(EmbeddedEngine(db, journal), delegation=Delegator(None, db))

        async def inline(run_id: str, reason: str) -> None:
            if not resume:
                return
            try:
                agent = agent_for_run(db, run_id)
            except StewardError as exc:
                if not as_json:
                    console.print(f"[yellow]not resumed:[/] {exc}")
                return
            # the run's lease while this process drives it (store/leases.py)
            with holding(db, run_id) as mine:
                if not mine:
                    if not as_json:
                        console.print(f"[yellow]not resumed:[/] run {run_id} is driven elsewhere")
                    return
                results.append(await runner.resume(agent, run_id, reason))

        service = ApprovalService(db, journal, inline)
        if as_json:
            row = run_async(lambda: decide(service, who))
            decided: Record = {
                "approval": approval_record(row),
                "resumed": [result_record(r) for r in results],
            }
            emit_json(decided)
            return
        try:
            row = run_async(lambda: decide(service, who))
            console.print(f"approval {row.id} {status(row.status)} by {row.decided_by}")
        finally:
            for result in results:
                print_result(result)


@app.command("approve")
def approve(
    approval_id: str = typer.Argument(...),
    comment: str = typer.Option("", "--comment"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume the run now."),
    args: str | None = typer.Option(
        None,
        "--args",
        help="Approve with these arguments instead (JSON); policy decides them again.",
    ),
    confirm: list[str] = typer.Option(
        [],
        "--confirm",
        help="An identifier argument (id, account, recipient) the edit changes on purpose; "
        "repeat per field. Without it such an edit is refused.",
    ),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
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
        _decide(open_db(db), key, resume, lambda service, who: service.decide(
            approval_id, who=who, approve=True, comment=comment, arguments=edited,
            confirmed=frozenset(confirm),
        ), as_json)  # fmt: skip


@app.command("reject")
def reject(
    approval_id: str = typer.Argument(...),
    comment: str = typer.Option(
        ..., "--comment", help="Why (shown to the agent and in the audit)."
    ),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Reject a pending call, with a comment, and resume its run."""
    with handled():
        _decide(open_db(db), key, resume, lambda service, who: service.decide(
            approval_id, who=who, approve=False, comment=comment
        ), as_json)  # fmt: skip


@app.command("answer")
def answer(
    approval_id: str = typer.Argument(..., help="The pending question (an ask_human approval)."),
    text: str = typer.Argument(..., help="The answer the agent receives."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume the run now."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Answer an agent's question (approve it with the answer as comment) and resume its run."""
    with handled():
        _decide(open_db(db), key, resume, lambda service, who: service.answer(
            approval_id, who=who, text=text
        ), as_json)  # fmt: skip


@app.command("sweep")
def sweep(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Expire approvals nobody decided in time and let their runs finish without them;
    resume runs still waiting behind approvals that were decided (--json: an array of
    run results, or of {"error"} for runs not resumed)."""
    with handled():
        from steward.core.errors import StewardError
        from steward.engines.sweep import resume_expired

        database = open_db(db)
        with journal_for(database) as journal:
            outcomes = run_async(lambda: resume_expired(database, journal))
        if as_json:
            emit_json([
                {"error": str(o), "code": o.code} if isinstance(o, StewardError)
                else result_record(o)
                for o in outcomes
            ])  # fmt: skip
            return
        if not outcomes:
            console.print("no overdue approvals, and no run waiting behind a decided one")
        for outcome in outcomes:
            if isinstance(outcome, StewardError):
                console.print(f"[yellow]not resumed:[/] {outcome}")
            else:
                print_result(outcome)
