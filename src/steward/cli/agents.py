"""`steward agents list|disable|enable|mode`: the kill switch and progressive autonomy."""

from __future__ import annotations

from typing import Any

import typer

from steward.cli.context import DbOption, console, handled, journal_for, open_db
from steward.cli.identity import KeyOption, acting_as
from steward.cli.records import Record
from steward.cli.render import Column, JsonOption, emit_json, listing, when
from steward.core.agent_state import DEFAULT_STATE, Autonomy
from steward.core.times import rfc3339, rfc3339_or_none

app = typer.Typer(help="Agents' kill switch and autonomy mode.", no_args_is_help=True)


def _enabled(value: Any) -> str:
    return "[green]enabled[/]" if value else "[red]DISABLED[/]"


AGENT_COLUMNS = (
    Column("name", "agent"),
    Column("enabled", show=_enabled),
    Column("mode"),
    Column("latest_version", "spec version", show=lambda v: v or "-"),
    Column("latest_version_at", "version since", show=when),
    Column("state_version", "state", right=True),
    Column("updated_at", "changed", show=when),
    Column("updated_by", "by"),
    Column("comment", wrap=True),
)


@app.command("list")
def list_command(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Every agent that has run or whose state was changed, with its kill switch, mode
    and newest spec version (--json: an array of agent objects)."""
    with handled():
        from steward.store.agents import list_agents
        from steward.store.runs import latest_agent_versions

        database = open_db(db)
        stored = {row.name: row for row in list_agents(database)}
        versions = latest_agent_versions(database)
        records: list[Record] = []
        for name in sorted(set(stored) | set(versions)):
            row = stored.get(name)
            state = row.state if row is not None else DEFAULT_STATE
            version = versions.get(name)
            records.append({
                "name": name,
                "enabled": state.enabled,
                "mode": state.mode.value,
                "latest_version": version.version if version is not None else None,
                "latest_version_at": rfc3339(version.created_at) if version else None,
                "state_version": state.version,
                "updated_at": rfc3339_or_none(row.updated_at if row is not None else None),
                "updated_by": row.updated_by if row is not None else None,
                "comment": row.comment if row is not None else None,
            })  # fmt: skip
        listing(records, AGENT_COLUMNS, title=f"{len(records)} agent(s)", as_json=as_json)


def _change(db: str | None, agent: str, key: str | None, comment: str, as_json: bool, *,
            enabled: bool | None = None, mode: Autonomy | None = None) -> None:  # fmt: skip
    from steward.security.keys import Permission
    from steward.store.agents import set_agent_state

    database = open_db(db)
    by = acting_as(database, key, Permission.MANAGE_AGENTS).label
    with journal_for(database) as journal:
        state = set_agent_state(database, agent, by=by, enabled=enabled, mode=mode, comment=comment,
                                on_commit=journal.publish)  # fmt: skip
    if as_json:
        emit_json({"name": agent, "enabled": state.enabled, "mode": state.mode.value,
                   "state_version": state.version, "updated_by": by, "comment": comment})  # fmt: skip
        return
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
    as_json: bool = JsonOption,
) -> None:
    """The kill switch: no new runs; running ones are denied at their next gate decision."""
    with handled():
        _change(db, agent, key, comment, as_json, enabled=False)


@app.command("enable")
def enable(
    agent: str = typer.Argument(...),
    key: str | None = KeyOption,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Turn an agent back on."""
    with handled():
        _change(db, agent, key, comment, as_json, enabled=True)


@app.command("mode")
def mode(
    agent: str = typer.Argument(...),
    autonomy: Autonomy = typer.Argument(..., help="advisory, supervised or autonomous."),
    key: str | None = KeyOption,
    comment: str = typer.Option("", "--comment"),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Progressive autonomy: advisory (every write needs a person), supervised (the spec's
    tiers), autonomous (review tiers run unattended; forbidden stays forbidden)."""
    with handled():
        _change(db, agent, key, comment, as_json, mode=autonomy)
