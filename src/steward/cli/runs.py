"""`steward run`, `steward runs list|show|resume|cancel`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from steward.cli.context import (
    DbOption,
    console,
    fail,
    handled,
    journal_for,
    open_db,
    run_async,
    time_range,
)
from steward.cli.identity import KeyOption, acting_as
from steward.cli.records import Record, run_record
from steward.cli.render import (
    Column,
    JsonOption,
    emit_json,
    listing,
    report,
    shorten,
    status,
    when,
)
from steward.core.states import RunStatus
from steward.core.times import rfc3339

if TYPE_CHECKING:
    from steward.core.events import Event
    from steward.runtime import RunResult

app = typer.Typer(help="Inspect and resume runs.", no_args_is_help=True)


def result_record(result: RunResult) -> Record:
    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "steps": result.steps,
        "output": result.output,
        "reason_code": result.reason_code,
        "reason": result.reason,
    }


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
    specialists: list[Path] = typer.Option(
        [], "--with", help="A specialist's spec the agent may delegate to (repeatable)."
    ),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Run an agent once on one input (with a key, the run records who started it, and
    that principal may not decide its approvals). Its delegations run the agents given
    with --with, else the versions of them on record."""
    with handled():
        from steward.engines.embedded import EmbeddedEngine
        from steward.orchestration import Delegator
        from steward.runtime import AgentRuntime, Runner, build_agent
        from steward.runtime.runner import new_run_id
        from steward.security.keys import Permission
        from steward.spec import load_spec
        from steward.store.leases import holding

        loaded = load_spec(file)
        database = open_db(db, create=True)
        agent = build_agent(loaded, db=database)
        given = {a.name: a for a in (build_agent(load_spec(p), db=database) for p in specialists)}
        stored = Delegator(None, database)

        def specialist(name: str) -> AgentRuntime | None:
            return given.get(name) or stored.resolve(name)

        tags = (
            acting_as(database, key, Permission.START_RUN, agent.name).starter_tags() if key else {}
        )

        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        run_id = new_run_id()
        # its lease, held while this process drives it (given back after the journal
        # closes): no server's sweep takes it over
        with holding(database, run_id), journal_for(database) as journal:
            runner = Runner(
                EmbeddedEngine(database, journal), delegation=Delegator(specialist, database)
            )
            for each in given.values():  # on record, so a later resume finds them by name
                runner.remember_version(each)
            result = run_async(
                lambda: runner.run(
                    agent, text, run_id=run_id, tags=tags, on_text=show if stream else None
                )
            )
        if stream:
            sys.stdout.write("\n")
        if as_json:
            emit_json(result_record(result))
        else:
            print_result(result)


RUN_COLUMNS = (
    Column("id", "run"),
    Column("agent"),
    Column("status", show=status),
    Column("created_at", "started", show=when),
    Column("steps", right=True),
    Column("input", show=shorten(40), wrap=True),
    Column("reason_code", "reason", show=shorten(28)),
)


@app.command("list")
def list_command(
    agent: str | None = typer.Option(None, help="Only this agent."),
    state: RunStatus | None = typer.Option(None, "--status", help="Only runs in this status."),
    limit: int = typer.Option(20, min=1, max=1000),
    search: str | None = typer.Option(None, help="Words in the input or answer (prefixes)."),
    tag: list[str] = typer.Option([], help="key=value, like tenant=acme (repeatable)."),
    since: str | None = typer.Option(None, help="Created at or after: RFC 3339, 2025-12-03, 24h."),
    until: str | None = typer.Option(
        None, help="Created before: RFC 3339, 2025-12-03 (its end), 1h."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """The newest runs, narrowed by words, tags and a time range (--json: an array of run
    objects)."""
    with handled():
        from steward.store.runs import list_runs
        from steward.store.search import RunFilter, SearchError, parse_tags

        start, end = time_range(since, until)
        try:
            wanted = RunFilter(search or "", parse_tags(tag), start, end)
        except SearchError as error:
            fail(f"--{error.field}: {error.message}")
        value = state.value if state is not None else None
        rows = list_runs(open_db(db), agent=agent, status=value, limit=limit, where=wanted)
        records = [run_record(row) for row in rows]
        listing(records, RUN_COLUMNS, title=f"{len(rows)} run(s)", as_json=as_json)


@app.command("show")
def show(
    run_id: str = typer.Argument(...), db: str | None = DbOption, as_json: bool = JsonOption
) -> None:
    """A run step by step: model turns, proposed calls, decisions, approvals, results
    (--json: {"run": {...}, "events": [{"id", "type", "ts", "data"}]})."""
    with handled():
        import msgspec

        from steward.store.runs import get_run, read_journal

        database = open_db(db)
        row = get_run(database, run_id)
        entries = read_journal(database, run_id)
        data: Record = {
            "run": run_record(row),
            "events": [
                {"id": e.id, "type": e.type, "ts": rfc3339(e.ts),
                 "data": msgspec.to_builtins(e.event)}
                for e in entries
            ],
        }  # fmt: skip

        def human(_data: Record) -> None:
            from rich.table import Table

            console.print(
                f"[bold]{row.id}[/]  agent {row.agent}@{row.agent_version}  {status(row.status)}"
                f"  steps {row.steps}  started {when(row.created_at)}"
            )
            console.print(f"input: {short_input(row.input)}", highlight=False)
            table = Table(show_lines=False)
            for column in ("#", "time", "event", "detail"):
                table.add_column(column, overflow="fold")
            start = row.created_at
            for entry in entries:
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

        report(data, as_json, human)


def short_input(text: str) -> str:
    return shorten(200)(text)


def _detail(event: Event) -> str:
    from steward.cli.run_details import detail

    return detail(event)


@app.command("resume")
def resume(
    run_id: str = typer.Argument(...), db: str | None = DbOption, as_json: bool = JsonOption
) -> None:
    """Resume a waiting or interrupted run from its journal."""
    with handled():
        from steward.core.errors import ConflictError
        from steward.engines.catalog import agent_for_run
        from steward.engines.embedded import EmbeddedEngine
        from steward.orchestration import Delegator
        from steward.runtime import Runner
        from steward.store.leases import holding
        from steward.store.runs import root_of

        database = open_db(db)
        run_id = root_of(database, run_id)  # a run tree is driven from its root
        agent = agent_for_run(database, run_id)
        with holding(database, run_id) as mine, journal_for(database) as journal:
            if not mine:
                raise ConflictError(f"run {run_id} is driven by another process (it holds the run)")
            result = run_async(
                lambda: Runner(
                    EmbeddedEngine(database, journal), delegation=Delegator(None, database)
                ).resume(agent, run_id)
            )
        if as_json:
            emit_json(result_record(result))
        else:
            print_result(result)


@app.command("cancel")
def cancel(
    run_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the run and the audit)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Cancel a waiting, queued or orphaned run: it finishes `cancelled`, and its pending
    approvals can no longer be decided. A run of a delegation tree cancels the whole tree
    (a tree is driven from its root)."""
    with handled():
        from steward.core.errors import ConflictError
        from steward.engines.cancel import cancel_tree
        from steward.security.keys import Permission
        from steward.store.runs import get_run, root_of

        database = open_db(db)
        by = acting_as(database, key, Permission.CANCEL_RUN).label
        with journal_for(database) as journal:
            root = root_of(database, run_id)
            if root == run_id:
                row = cancel_tree(database, journal, root, by=by, reason=reason)
            else:
                with contextlib.suppress(ConflictError):  # the root finished: the run may not
                    cancel_tree(database, journal, root, by=by, reason=reason)
                row = get_run(database, run_id)
                if row.status != "cancelled":
                    raise ConflictError(f"run {run_id} already {row.status}")
        if as_json:
            emit_json(run_record(row))
            return
        console.print(f"run [bold]{row.id}[/] {status(row.status)}", highlight=False)
        console.print(f"  reason: [{row.reason_code}] {row.reason}", highlight=False)
