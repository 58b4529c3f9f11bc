"""The `steward` command: validate and explain specs, test policies, run agents, decide
approvals, inspect runs, verify the audit trail, and run the demo.

Start-up is kept light (`steward --help` well under 0.3 s): the command modules import
only Typer, Rich and steward's small core types at the top; the store, runtime, server
and model stack are imported inside the commands that use them."""

from __future__ import annotations

import typer

from steward import __version__
from steward.cli import (
    agents,
    approvals,
    audit,
    demo,
    evals,
    gateway,
    keys,
    mcp,
    monitors,
    policy,
    reports,
    runs,
    serve,
    spec_commands,
    telemetry,
    worker,
)
from steward.cli.context import DbOption, console, handled, open_db
from steward.cli.exits import EPILOG
from steward.cli.render import JsonOption, report

app = typer.Typer(
    name="steward",
    help="Run AI agents in production under governance.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain help: Typer's Rich help imports a Markdown parser (~80 ms) on every --help
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"steward {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run AI agents in production under governance."""


app.command("validate", epilog=EPILOG)(spec_commands.validate)
app.command("explain", epilog=EPILOG)(spec_commands.explain)
app.command("run", epilog=EPILOG)(runs.run)
app.command("demo", epilog=EPILOG)(demo.demo)
app.command("costs", epilog=EPILOG)(reports.costs)
app.command("stats", epilog=EPILOG)(reports.stats)
app.command("serve", epilog=EPILOG)(serve.serve)
app.command("worker", epilog=EPILOG)(worker.worker)
app.command("gateway", epilog=EPILOG)(gateway.gateway)
app.add_typer(runs.app, name="runs")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
app.add_typer(agents.app, name="agents")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(keys.app, name="keys")
app.add_typer(monitors.app, name="monitors")
app.add_typer(policy.app, name="policy")
app.add_typer(evals.app, name="eval")
app.add_typer(mcp.app, name="mcp")

db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("init")
def db_init(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Create the database (or bring its schema up to date)."""
    with handled():
        database = open_db(db, create=True)
        data = {"url": database.url, "revision": database.current_revision()}
        report(data, as_json, lambda d: console.print(
            f"database ready at {d['url']} (schema {d['revision']})"
        ))  # fmt: skip


def main() -> None:
    app()


if __name__ == "__main__":
    main()
