"""`steward serve`: the REST API, console and /metrics (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from steward.cli.context import DbOption, console, db_url, handled, open_db

DEMO_SPEC = Path(__file__).resolve().parents[1] / "demo" / "support_agent.yaml"


def serve(
    agent: list[Path] = typer.Option(
        [], "--agent", "-a", help="A spec file or a directory of them (repeatable)."
    ),
    demo: bool = typer.Option(False, "--demo", help="Also load the demo support-desk agent."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8700, "--port", min=1, max=65535),
    recover: bool = typer.Option(
        True,
        "--recover/--no-recover",
        help="Resume runs a stopped server left running (one recovering server per database).",
    ),
    a2a: bool = typer.Option(
        False,
        "--a2a",
        help="Also serve every agent over the A2A protocol at /a2a/{agent} (the `a2a` extra; "
        "cards signed with the key at STEWARD_A2A_SIGNING_KEY).",
    ),
    db: str | None = DbOption,
) -> None:
    """Serve the API under /v1 (schema at /openapi.json), the console at /console, /metrics.
    People sign in to the console with a key, or by single sign-on when STEWARD_OIDC_* is set."""
    with handled():
        import uvicorn

        from steward.security.sso import SsoConfig
        from steward.server import create_app, load_agents
        from steward.store.keys import list_keys

        sso = SsoConfig.from_env(os.environ)  # STEWARD_OIDC_*: a half configuration stops here
        a2a_config = None
        if a2a:
            from steward.a2a.config import A2AConfig

            a2a_config = A2AConfig.from_env(os.environ)  # no signing key: it stops here
        database = open_db(db, create=True)  # create and migrate before serving
        try:
            active_keys = len(list_keys(database))
        finally:
            database.close()
        paths = list(agent)
        if demo:
            from steward.demo.tools import SYSTEMS_ENV, systems_path

            os.environ.setdefault(SYSTEMS_ENV, str(systems_path()))
            paths.append(DEMO_SPEC)
        agents = load_agents(paths)
        names = ", ".join(a.name for a in agents) or "none (runs can still be decided)"
        console.print(f"steward serving http://{host}:{port} · agents: {names} · db {db_url(db)}")
        if active_keys:
            console.print(
                f"{active_keys} active key(s): sign in at http://{host}:{port}/console with one"
            )
        else:
            console.print(
                "no keys yet: create one with steward keys create --name you --role admin"
            )
        if sso is not None:
            console.print(f"single sign-on: {sso.issuer} (client {sso.client_id})")
        if a2a_config is not None:
            console.print(f"A2A: /a2a/{{agent}} (cards signed by key {a2a_config.key_id})")
        uvicorn.run(
            create_app(db_url(db), agents, recover=recover, sso=sso, a2a=a2a_config),
            host=host,
            port=port,
            log_level="warning",
        )
