"""Who a CLI command acts as: the principal of an API key (`--key` or STEWARD_API_KEY),
checked against the store like any API call. A command that changes what others rely on
(deciding approvals, the kill switch, cancelling) refuses to act without one.

The CLI works on the database directly, so whoever can write that database is trusted
with it; the key makes the action attributable to a principal and lets four eyes hold
between honest operators, as it does in the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from steward.cli.context import fail
from steward.cli.exits import ExitCode

if TYPE_CHECKING:
    from steward.security.keys import Permission, Principal
    from steward.store.database import Database

KEY_ENV = "STEWARD_API_KEY"

KeyOption = typer.Option(
    None,
    "--key",
    envvar=KEY_ENV,
    show_envvar=True,
    help="Your API key (stw_...): the command acts as its principal.",
)


def acting_as(
    db: Database, token: str | None, permission: Permission | None = None, agent: str | None = None
) -> Principal:
    """The principal of `token`, which must be valid, unrevoked and (when `permission` is
    given) allowed to do it; otherwise one clear error and exit code 4 (denied)."""
    from steward.core.decision import Verdict
    from steward.security.keys import authorize
    from steward.store.keys import authenticate_token

    if not token or not token.strip():
        fail(f"this command acts as someone: pass --key stw_... or set {KEY_ENV}", ExitCode.DENIED)
    who = authenticate_token(db, token.strip())
    if who is None:
        fail("the API key is not valid: unknown, revoked or malformed", ExitCode.DENIED)
    if permission is not None:
        decision = authorize(who, permission, agent)
        if decision.verdict is not Verdict.ALLOW:
            fail(decision.reasons[0].message, ExitCode.DENIED)
    return who
