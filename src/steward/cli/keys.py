"""`steward keys create|list|revoke`: API keys for people and agents."""

from __future__ import annotations

import typer
from rich.table import Table

from steward.cli.context import DbOption, console, fail, handled, journal_for, open_db
from steward.cli.identity import KeyOption, acting_as
from steward.cli.render import when
from steward.security.keys import Permission, Role
from steward.store.database import Database
from steward.store.keys import create_key, list_keys, revoke_key

app = typer.Typer(
    help="API keys: people (admin, reviewer, viewer) and agents.", no_args_is_help=True
)


def _issuer(db: Database, key: str | None) -> str:
    """Who manages keys: the admin whose key is given, else `cli` (no key)."""
    return acting_as(db, key, Permission.MANAGE_KEYS).label if key else "cli"


@app.command("create")
def create(
    name: str = typer.Option(
        ...,
        "--name",
        help="Who or what holds the key: a unique principal (a second key for a "
        "name is another key of the same person or agent).",
    ),
    role: str = typer.Option(..., "--role", help="admin, reviewer, viewer or agent."),
    agent: str | None = typer.Option(None, "--agent", help="For --role agent: which agent."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """Issue a key. The token is printed once; only its hash is stored. With a key (an
    admin's), the audit records who issued it; without one (the first key of a new
    database), `cli`: whoever can write the database is trusted with it."""
    with handled():
        try:
            chosen = Role(role)
        except ValueError:
            fail(f"--role must be one of {', '.join(r.value for r in Role)}, not {role!r}")
        database = open_db(db, create=True)
        by = _issuer(database, key)
        with journal_for(database) as journal:
            row, token = create_key(
                database, name=name, role=chosen, agent=agent, by=by, on_commit=journal.publish
            )
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
) -> None:
    """Keys (never their secrets)."""
    with handled():
        rows = list_keys(open_db(db), include_revoked=all_keys)
        table = Table(title=f"{len(rows)} key(s)")
        for column in ("key", "name", "principal", "role", "agent", "created", "by", "revoked"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(row.id, row.name, row.principal_id, row.role.value, row.agent or "", when(row.created_at),
                          row.created_by, when(row.revoked_at) if row.revoked_at else "")  # fmt: skip
        console.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (the part after `stw_`)."),
    comment: str = typer.Option("", "--comment", help="Why (recorded in the audit)."),
    key: str | None = KeyOption,
    db: str | None = DbOption,
) -> None:
    """Revoke a key at once; its console sessions end too."""
    with handled():
        database = open_db(db)
        by = _issuer(database, key)
        with journal_for(database) as journal:
            revoke_key(database, key_id, by=by, comment=comment, on_commit=journal.publish)
        console.print(f"key {key_id} revoked")
