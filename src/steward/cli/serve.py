"""`steward serve`: the REST API, console and /metrics (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from steward.cli.context import DbOption, console, db_url, fail, handled, open_db
from steward.cli.worker import (
    Engine,
    EngineOption,
    NamespaceOption,
    TaskQueueOption,
    TemporalOption,
)

DEMO_SPEC = Path(__file__).resolve().parents[1] / "demo" / "support_agent.yaml"


def serve(
    agent: list[Path] = typer.Option(
        [], "--agent", "-a", help="A spec file or a directory of them (repeatable)."
    ),
    demo: bool = typer.Option(False, "--demo", help="Also load the demo support-desk agent."),
    multi_agent: bool = typer.Option(
        False,
        "--multi-agent",
        help="With --demo: also load the multi-agent demo's triage and its specialists "
        "(steward demo --multi-agent), so that their run trees can be decided and resumed.",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8700, "--port", min=1, max=65535),
    recover: bool = typer.Option(
        True,
        "--recover/--no-recover",
        help="Resume runs a stopped server left running, at start and (on PostgreSQL, those "
        "nobody leases) at each sweep; one recovering server per SQLite database.",
    ),
    sweep_seconds: float = typer.Option(
        15.0,
        "--sweep-seconds",
        min=0.05,
        max=3600.0,
        help="How often the server expires overdue approvals and takes over runs that a "
        "stopped or dead process left (a replica's, on PostgreSQL).",
    ),
    label: str = typer.Option(
        "production",
        "--label",
        help="Run the version this label points at, for agents that have it "
        "(steward agents promote); others run their spec file.",
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
    a2a: bool = typer.Option(
        False,
        "--a2a",
        help="Also serve every agent over the A2A protocol at /a2a/{agent} (the `a2a` extra; "
        "cards signed with the key at STEWARD_A2A_SIGNING_KEY).",
    ),
    db: str | None = DbOption,
    engine: Engine = EngineOption,
    temporal: str = TemporalOption,
    task_queue: str = TaskQueueOption,
    namespace: str = NamespaceOption,
) -> None:
    """Serve the API under /v1 (schema at /openapi.json), the console at /console, /metrics
    (and with --mcp the MCP gateway at /mcp). People sign in to the console with a key, or
    by single sign-on when STEWARD_OIDC_* is set."""
    with handled():
        import uvicorn

        from steward.security.sso import SsoConfig
        from steward.server import create_app, load_agents
        from steward.server.app import TemporalTarget
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
            from steward.demo import MULTI_AGENT_SPECS
            from steward.demo.tools import SYSTEMS_ENV, systems_path

            os.environ.setdefault(SYSTEMS_ENV, str(systems_path()))
            paths += [DEMO_SPEC, *(MULTI_AGENT_SPECS if multi_agent else ())]
        elif multi_agent:
            fail("--multi-agent loads the multi-agent demo's agents: give it with --demo")
        # the definitions of MCP servers' tools are pinned in this database while serving
        agents = load_agents(paths, open_db(db))
        gateway = None
        if mcp:
            try:
                from steward.gateway.config import GatewayConfig
            except ImportError as exc:
                fail(f"--mcp needs the MCP SDK 2.x: pip install 'steward-governance[mcp]' ({exc})")
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
        if sso is not None:
            console.print(f"single sign-on: {sso.issuer} (client {sso.client_id})")
        if a2a_config is not None:
            console.print(f"A2A: /a2a/{{agent}} (cards signed by key {a2a_config.key_id})")
        uvicorn.run(
            create_app(
                db_url(db),
                agents,
                recover=recover,
                sweep_seconds=sweep_seconds,
                sso=sso,
                label=label,
                mcp=gateway,
                host=host,
                a2a=a2a_config,
                temporal=TemporalTarget(temporal, task_queue, namespace)
                if engine is Engine.TEMPORAL
                else None,
            ),
            host=host,
            port=port,
            log_level="warning",
        )
