"""`steward audit verify|export|head`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from sqlalchemy import select

from steward.cli.context import DbOption, console, fail, handled, open_db
from steward.store.chain import verify_chain
from steward.store.schema import chain_head, events

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify")
def verify(db: str | None = DbOption) -> None:
    """Recompute the hash chain; any edit, deletion or reordering is reported."""
    with handled():
        database = open_db(db)
        with database.reader.connect() as connection:
            report = verify_chain(connection)
        if report.ok:
            console.print(f"[green]verified[/] {report.checked} events; head {report.head_hash}")
            return
        for problem in report.problems[:50]:
            console.print(
                f"[red]broken[/] at event {problem.event_id}: {problem.problem}", highlight=False
            )
        fail(
            f"audit chain does not verify: {len(report.problems)} problem(s) in {report.checked} events",
            1,
        )


@app.command("head")
def head(db: str | None = DbOption) -> None:
    """Print the chain head (id and hash), to keep outside the database."""
    with handled():
        with open_db(db).reader.connect() as connection:
            row = connection.execute(select(chain_head).where(chain_head.c.id == 1)).one()
        console.print(f"{row.last_id} {row.last_hash}", highlight=False)


@app.command("export")
def export(
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per event."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default stdout)."
    ),
    db: str | None = DbOption,
) -> None:
    """Export the audit trail with its hashes."""
    with handled():
        if not jsonl:
            fail("choose a format: --jsonl")
        database = open_db(db)
        try:
            stream = output.open("w", encoding="utf-8") if output else sys.stdout
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}")
        try:
            with database.reader.connect() as connection:
                for row in connection.execution_options(stream_results=True).execute(
                    select(events).order_by(events.c.id)
                ):
                    stream.write(
                        f'{{"id":{row.id},"run_id":{_json(row.run_id)},"type":{_json(row.type)},'
                        f'"ts":{row.ts!r},"event":{row.data},"prev_hash":"{row.prev_hash}","hash":"{row.hash}"}}\n'
                    )
        finally:
            if output:
                stream.close()


def _json(value: str | None) -> str:
    return json.dumps(value)
