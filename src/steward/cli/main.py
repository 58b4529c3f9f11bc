"""The `steward` command: validate and explain specs, run agents, decide approvals,
inspect runs, verify the audit trail, and run the demo."""

from __future__ import annotations

import typer

from steward.cli import (
    agents,
    approvals,
    audit,
    demo,
    keys,
    reports,
    runs,
    serve,
    spec_commands,
    telemetry,
)
from steward.cli.context import DbOption, console, handled, open_db

app = typer.Typer(
    name="steward",
    help="Run AI agents in production under governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("validate")(spec_commands.validate)
app.command("explain")(spec_commands.explain)
app.command("run")(runs.run)
app.command("demo")(demo.demo)
app.command("costs")(reports.costs)
app.command("stats")(reports.stats)
app.command("serve")(serve.serve)
app.add_typer(runs.app, name="runs")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
app.add_typer(agents.app, name="agents")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(keys.app, name="keys")

db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("init")
def db_init(db: str | None = DbOption) -> None:
    """Create the database (or bring its schema up to date)."""
    with handled():
        database = open_db(db, create=True)
        console.print(f"database ready at {database.url} (schema {database.current_revision()})")


def main() -> None:
    app()
