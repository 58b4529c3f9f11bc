"""`steward agents list|disable|enable|mode`: the kill switch and progressive autonomy."""

from __future__ import annotations

import typer
from rich.table import Table

from steward.cli.context import DbOption, console, handled, journal_for, open_db
from steward.cli.identity import KeyOption, acting_as
from steward.cli.render import when
from steward.core.agent_state import Autonomy
from steward.security.keys import Permission
from steward.store.agents import list_agents, set_agent_state

app = typer.Typer(help="Agents' kill switch and autonomy mode.", no_args_is_help=True)


@app.command("list")
def list_command(db: str | None = DbOption) -> None:
    """Agents whose state was ever changed (others are enabled and supervised)."""
    with handled():
        table = Table(title="agents")
        for column in ("agent", "enabled", "mode", "version", "changed", "by", "comment"):
            table.add_column(column)
        for row in list_agents(open_db(db)):
            enabled = "[green]enabled[/]" if row.state.enabled else "[red]DISABLED[/]"
            table.add_row(row.name, enabled, row.state.mode.value, str(row.state.version), when(row.updated_at),
                          row.updated_by, row.comment)  # fmt: skip
        console.print(table)


def _change(db: str | None, agent: str, key: str | None, comment: str, *,
            enabled: bool | None = None, mode: Autonomy | None = None) -> None:  # fmt: skip
    database = open_db(db)
    by = acting_as(database, key, Permission.MANAGE_AGENTS).label
    with journal_for(database) as journal:
        state = set_agent_state(database, agent, by=by, enabled=enabled, mode=mode, comment=comment,
                                on_commit=journal.publish)  # fmt: skip
    shown = "enabled" if state.enabled else "[red]disabled[/]"
    console.print(
        f"agent [bold]{agent}[/] {shown}, {state.mode.value} (version {state.version}, by {by})"
    )


@app.command("disable")
def disable(
    agent: str = typer.Argument(...),
    key: str | None = KeyOption,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DbOption,
) -> None:
    """The kill switch: no new runs; running ones are denied at their next gate decision."""
    with handled():
        _change(db, agent, key, comment, enabled=False)


@app.command("enable")
def enable(
    agent: str = typer.Argument(...),
    key: str | None = KeyOption,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DbOption,
) -> None:
    """Turn an agent back on."""
    with handled():
        _change(db, agent, key, comment, enabled=True)


@app.command("mode")
def mode(
    agent: str = typer.Argument(...),
    autonomy: Autonomy = typer.Argument(..., help="advisory, supervised or autonomous."),
    key: str | None = KeyOption,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DbOption,
) -> None:
    """Progressive autonomy: advisory (every write needs a person), supervised (the spec's
    tiers), autonomous (review tiers run unattended; forbidden stays forbidden)."""
    with handled():
        _change(db, agent, key, comment, mode=autonomy)
