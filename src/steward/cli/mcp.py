"""`steward mcp pins list|approve`: the pinned definitions of MCP servers' tools."""

from __future__ import annotations

import typer

from steward.cli.context import DbOption, console, handled, journal_for, open_db
from steward.cli.identity import KeyOption, acting_as
from steward.cli.render import Column, JsonOption, emit_json, listing, when

app = typer.Typer(help="MCP servers' tools: pinned definitions.", no_args_is_help=True)
pins = typer.Typer(
    help="Pinned tool definitions: a changed or poisoned one is quarantined until approved.",
    no_args_is_help=True,
)
app.add_typer(pins, name="pins")

PIN_COLUMNS = (
    Column("agent"),
    Column("tool"),
    Column("status"),
    Column("reason"),
    Column("seen_sha256", "shows", show=lambda v: str(v)[:12]),
    Column("approved_sha256", "approved", show=lambda v: str(v)[:12] if v else ""),
    Column("updated_at", "changed", show=when),
    Column("updated_by", "by"),
)


@pins.command("list")
def list_command(
    agent: str | None = typer.Option(None, "--agent", help="Only this agent's tools."),
    quarantined: bool = typer.Option(False, "--quarantined", help="Only quarantined tools."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Every pinned MCP tool: what it shows and what is approved (--json: an array of pins,
    each with its finding and the definition it shows)."""
    with handled():
        from steward.store.mcp_pins import list_pins

        rows = list_pins(open_db(db), agent=agent, quarantined=quarantined)
        if as_json:
            emit_json([{**p.as_dict(), "definition": p.seen_definition} for p in rows])
            return
        records = [p.as_dict() for p in rows]
        listing(records, PIN_COLUMNS, title=f"{len(rows)} pinned MCP tool(s)", as_json=False)
        for pin in rows:
            if pin.quarantined:
                console.print(f"{pin.agent} {pin.tool}: {pin.reason} {pin.detail}".rstrip())


@pins.command("approve")
def approve(
    agent: str = typer.Argument(..., help="The agent."),
    tool: str = typer.Argument(..., help="The tool, as server.tool."),
    sha256: str | None = typer.Option(
        None,
        "--sha256",
        help="The definition you reviewed (from `list --json`): refused if "
        "the server shows another one by now.",
    ),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Trust the definition a quarantined tool shows now (an admin; audited)."""
    with handled():
        from steward.security.keys import Permission
        from steward.store.mcp_pins import approve_pin

        database = open_db(db)
        by = acting_as(database, key, Permission.MANAGE_AGENTS).label
        with journal_for(database) as journal:
            pin = approve_pin(database, agent, tool, by=by, sha256=sha256,
                              on_commit=journal.publish)  # fmt: skip
        if as_json:
            emit_json(pin.as_dict())
            return
        console.print(f"{tool} of {agent} approved: definition {pin.seen_sha256[:12]} by {by}")
