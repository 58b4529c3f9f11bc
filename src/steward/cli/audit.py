"""`steward audit verify|export|head`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from steward.cli.context import DbOption, console, fail, handled, open_db, time_range
from steward.cli.exits import ExitCode
from steward.cli.render import JsonOption, emit_json

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify")
def verify(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Recompute the hash chain; any edit, deletion or reordering is reported (exit 1).
    --json: {"ok", "checked", "head_hash", "problems": [{"event_id", "problem"}]}."""
    with handled():
        from steward.store.chain import verify_chain

        database = open_db(db)
        with database.reader.connect() as connection:
            report = verify_chain(connection)
        if as_json:
            emit_json({
                "ok": report.ok,
                "checked": report.checked,
                "head_hash": report.head_hash,
                "problems": [{"event_id": p.event_id, "problem": p.problem}
                             for p in report.problems],
            })  # fmt: skip
            if not report.ok:
                raise typer.Exit(int(ExitCode.FAILED))
            return
        if report.ok:
            console.print(f"[green]verified[/] {report.checked} events; head {report.head_hash}")
            return
        for problem in report.problems[:50]:
            console.print(
                f"[red]broken[/] at event {problem.event_id}: {problem.problem}", highlight=False
            )
        fail(
            f"audit chain does not verify: {len(report.problems)} problem(s) in {report.checked} events",
            ExitCode.FAILED,
        )


@app.command("head")
def head(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Print the chain head (id and hash), to keep outside the database
    (--json: {"last_id", "last_hash"})."""
    with handled():
        from sqlalchemy import select

        from steward.store.schema import chain_head

        with open_db(db).reader.connect() as connection:
            row = connection.execute(select(chain_head).where(chain_head.c.id == 1)).one()
        if as_json:
            emit_json({"last_id": row.last_id, "last_hash": row.last_hash})
            return
        console.print(f"{row.last_id} {row.last_hash}", highlight=False)


@app.command("export")
def export(
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per event."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV: a header, one row per event."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default stdout)."
    ),
    since: str | None = typer.Option(None, help="Events at or after: RFC 3339, 2025-12-03, 24h."),
    until: str | None = typer.Option(None, help="Events before: RFC 3339, 2025-12-03 (its end)."),
    db: str | None = DbOption,
) -> None:
    """Export the audit trail with its hashes, one event per line: {"id", "run_id",
    "type", "ts" (RFC 3339), "ts_unix" (the exact stored seconds the hash covers),
    "event", "prev_hash", "hash"}. --csv adds the actor column."""
    with handled():
        from steward.store.audit import export_lines

        if jsonl == as_csv:
            fail("choose a format: --jsonl or --csv")
        start, end = time_range(since, until)
        database = open_db(db)
        try:
            stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}")
        try:
            for line in export_lines(database, "csv" if as_csv else "jsonl",
                                     since=start, until=end):  # fmt: skip
                stream.write(line)
        finally:
            if output:
                stream.close()
