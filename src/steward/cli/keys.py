"""`steward keys create|list|revoke`: API keys for people and agents."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from steward.cli.context import DbOption, console, handled, journal_for, open_db
from steward.cli.identity import KeyOption, acting_as
from steward.cli.records import key_record
from steward.cli.render import Column, JsonOption, emit_json, listing, when
from steward.security.keys import Role

if TYPE_CHECKING:
    from steward.store.database import Database

app = typer.Typer(
    help="API keys: people (admin, reviewer, viewer) and agents.", no_args_is_help=True
)


def _issuer(db: Database, key: str | None) -> str:
    """Who manages keys: the admin whose key is given, else `cli` (no key)."""
    from steward.security.keys import Permission

    return acting_as(db, key, Permission.MANAGE_KEYS).label if key else "cli"


KEY_COLUMNS = (
    Column("id", "key"),
    Column("name"),
    Column("principal_id", "principal"),
    Column("role"),
    Column("agent"),
    Column("created_at", "created", show=when),
    Column("created_by", "by"),
    Column("revoked_at", "revoked", show=lambda v: when(v) if v else ""),
)


@app.command("create")
def create(
    name: str = typer.Option(
        ...,
        "--name",
        help="Who or what holds the key: a unique principal (a second key for a "
        "name is another key of the same person or agent).",
    ),
    role: Role = typer.Option(..., "--role", help="Its role."),
    agent: str | None = typer.Option(None, "--agent", help="For --role agent: which agent."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Issue a key. The token is printed once; only its hash is stored. With a key (an
    admin's), the audit records who issued it; without one (the first key of a new
    database), `cli`: whoever can write the database is trusted with it."""
    with handled():
        from steward.store.keys import create_key

        database = open_db(db, create=True)
        by = _issuer(database, key)
        with journal_for(database) as journal:
            row, token = create_key(
                database, name=name, role=role, agent=agent, by=by, on_commit=journal.publish
            )
        if as_json:
            emit_json({**key_record(row), "token": token})
            return
        scope = f" for agent {row.agent}" if row.agent else ""
        console.print(f"key {row.id} ({row.role}{scope}) issued to {row.name}")
        console.print(
            f"principal {row.principal_id}: every key issued to {row.name} is one identity"
        )
        console.print("token (shown once, store it now):")
        print(token)  # plain stdout, so scripts can capture it


@app.command("list")
def list_command(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Keys, never their secrets (--json: an array of key objects)."""
    with handled():
        from steward.store.keys import list_keys

        rows = list_keys(open_db(db), include_revoked=all_keys)
        records = [key_record(row) for row in rows]
        listing(records, KEY_COLUMNS, title=f"{len(rows)} key(s)", as_json=as_json)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (the part after `stw_`)."),
    comment: str = typer.Option("", "--comment", help="Why (recorded in the audit)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """Revoke a key at once; its console sessions end too."""
    with handled():
        from steward.store.keys import revoke_key

        database = open_db(db)
        by = _issuer(database, key)
        with journal_for(database) as journal:
            revoke_key(database, key_id, by=by, comment=comment, on_commit=journal.publish)
        console.print(f"key {key_id} revoked")


@app.command("sign-out")
def sign_out(
    name: str = typer.Argument(..., help="The person's name (as in `keys list`)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """End every console session of a person now: those opened with their keys and by
    single sign-on (whose role otherwise holds for the session's 8 hours). Their keys
    stay valid: revoke those with `keys revoke`."""
    with handled():
        from steward.store.sso import end_sessions

        database = open_db(db)
        _issuer(database, key)  # an admin's key, when given
        ended = end_sessions(database, name)
        console.print(f"{ended} console session(s) of {name} ended")
