"""`steward serve`: the REST API, console and /metrics (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from steward.cli.context import DbOption, console, db_url, fail, handled, open_db

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
    mcp: bool = typer.Option(
        False,
        "--mcp",
        help="Also serve the governed MCP gateway at /mcp (agents with "
        "`model: external`; needs the `mcp` extra).",
    ),
    mcp_hold_seconds: float = typer.Option(
        0.0,
        "--mcp-hold-seconds",
        min=0.0,
        max=300.0,
        help="Hold an MCP call that needs approval open this long before answering.",
    ),
    db: str | None = DbOption,
) -> None:
    """Serve the API under /v1 (schema at /openapi.json), the console at /console, /metrics
    (and with --mcp the MCP gateway at /mcp)."""
    with handled():
        import uvicorn

        from steward.server import create_app, load_agents
        from steward.store.keys import list_keys

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
        gateway = None
        if mcp:
            try:
                from steward.gateway.config import GatewayConfig
            except ImportError as exc:
                fail(
                    f"--mcp needs the MCP SDK 2.x: pip install 'steward-governance\\[mcp]' ({exc})"
                )
            base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
            gateway = GatewayConfig(hold_seconds=mcp_hold_seconds, decide_url=base)
        names = ", ".join(a.name for a in agents) or "none (runs can still be decided)"
        console.print(f"steward serving http://{host}:{port} · agents: {names} · db {db_url(db)}")
        if gateway is not None:
            console.print(f"MCP gateway at http://{host}:{port}/mcp")
        if active_keys:
            console.print(
                f"{active_keys} active key(s): sign in at http://{host}:{port}/console with one"
            )
        else:
            console.print(
                "no keys yet: create one with steward keys create --name you --role admin"
            )
        uvicorn.run(
            create_app(db_url(db), agents, recover=recover, mcp=gateway, host=host),
            host=host,
            port=port,
            log_level="warning",
        )
