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


# -- versions and labels -----------------------------------------------------------------


def _actor(database: Any, key: str | None) -> Any:
    from steward.evals.promotion import Actor
    from steward.security.keys import Permission, Role

    who = acting_as(database, key, Permission.MANAGE_AGENTS)
    return Actor(who.label, who.role is Role.ADMIN)


def _moved(event: Any, as_json: bool) -> None:
    data = {"agent": event.agent, "label": event.label, "version": event.version,
            "previous": event.previous or None, "action": event.action, "by": event.by,
            "reason": event.reason, "suite": event.suite or None,
            "eval_result": event.eval_result or None,
            "canary_version": event.canary_version or None,
            "canary_percent": event.canary_percent}  # fmt: skip
    if as_json:
        emit_json(data)
        return
    line = f"{event.agent} [bold]{event.label}[/] → {event.version} ({event.action} by {event.by}"
    line += f", was {event.previous})" if event.previous else ")"
    if event.suite and event.action == "promote":
        line += f" · passed {event.suite} ({event.eval_result})"
    if event.canary_version:
        line += f" · canary {event.canary_version} {event.canary_percent}%"
    console.print(line)


@app.command("promote")
def promote(
    agent: str = typer.Argument(...),
    version: str = typer.Argument(..., help="The version (content hash) to promote."),
    to: str = typer.Option("production", "--to", help="The label to move."),
    override: bool = typer.Option(
        False, "--override", help="Admins: move it without a passing evaluation (needs --reason)."
    ),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit trail)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Point a label at VERSION: only when that exact version's latest evaluation on the
    suite its spec declares (required_suite) passed; an admin may --override with a
    --reason. Every move is an audited event. Exit 1 when refused."""
    with handled():
        from steward.evals.promotion import promote as promote_version

        database = open_db(db)
        actor = _actor(database, key)
        with journal_for(database) as journal:
            event = promote_version(database, agent, version, label=to, actor=actor,
                                    override_reason=reason if override else None,
                                    on_commit=journal.publish)  # fmt: skip
        _moved(event, as_json)


@app.command("rollback")
def rollback(
    agent: str = typer.Argument(...),
    label: str = typer.Option("production", "--label", help="The label to move back."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit trail)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Move a label back to the version it pointed at before its current one."""
    with handled():
        from steward.evals.promotion import rollback as rollback_label

        database = open_db(db)
        actor = _actor(database, key)
        with journal_for(database) as journal:
            event = rollback_label(database, agent, label=label, actor=actor, reason=reason,
                                   on_commit=journal.publish)  # fmt: skip
        _moved(event, as_json)


@app.command("canary")
def canary(
    agent: str = typer.Argument(...),
    version: str = typer.Argument(..., help="The candidate version."),
    percent: int = typer.Option(..., "--percent", min=0, max=100, help="Share of runs; 0 ends it."),
    label: str = typer.Option("production", "--label"),
    override: bool = typer.Option(
        False, "--override", help="Admins: without a passing evaluation."
    ),
    reason: str = typer.Option("", "--reason"),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Send PERCENT% of a label's runs to VERSION (chosen per run from a hash of its id,
    recorded on the run). The version passes the same evaluation gate as a promotion."""
    with handled():
        from steward.evals.promotion import canary as set_canary

        database = open_db(db)
        actor = _actor(database, key)
        with journal_for(database) as journal:
            event = set_canary(database, agent, version, label=label, percent=percent, actor=actor,
                               override_reason=reason if override else None,
                               on_commit=journal.publish)  # fmt: skip
        _moved(event, as_json)


LABEL_COLUMNS = (
    Column("label"),
    Column("version"),
    Column("canary_version", "canary", show=lambda v: v or "-"),
    Column("canary_percent", "canary %", right=True),
    Column("updated_at", "moved", show=when),
    Column("updated_by", "by"),
)


@app.command("labels")
def labels(
    agent: str = typer.Argument(...),
    history: bool = typer.Option(False, "--history", help="Every move, oldest first."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """An agent's labels and the versions they point at (--history: every move)."""
    with handled():
        from steward.store.labels import label_moves, list_labels

        database = open_db(db)
        if history:
            moves = [{"label": m.label, "version": m.version, "previous": m.previous,
                      "action": m.action, "by": m.by, "reason": m.reason,
                      "eval_result": m.eval_result, "canary_version": m.canary_version,
                      "canary_percent": m.canary_percent, "at": rfc3339(m.at)}
                     for m in label_moves(database, agent)]  # fmt: skip
            listing(moves, (Column("at", show=when), Column("label"), Column("action"),
                            Column("version"), Column("previous"), Column("by"),
                            Column("reason", wrap=True)), title=f"{len(moves)} move(s)",
                    as_json=as_json)  # fmt: skip
            return
        rows = [{"label": r.label, "version": r.version, "canary_version": r.canary_version,
                 "canary_percent": r.canary_percent, "updated_at": rfc3339(r.updated_at),
                 "updated_by": r.updated_by} for r in list_labels(database, agent)]  # fmt: skip
        listing(rows, LABEL_COLUMNS, title=f"{agent}: {len(rows)} label(s)", as_json=as_json)


@app.command("diff")
def diff(
    agent: str = typer.Argument(...),
    old: str = typer.Argument(..., help="The older version."),
    new: str = typer.Argument(..., help="The newer version."),
    db: str | None = DbOption,
) -> None:
    """The difference between two stored versions: spec and prompt file, unified diff."""
    with handled():
        from steward.prompts.diff import version_diff

        text = version_diff(open_db(db), agent, old, new)
        print(
            text or f"{agent}@{old} and {agent}@{new} are the same text", end="" if text else "\n"
        )
