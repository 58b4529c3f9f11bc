"""`steward gateway`: the governed MCP gateway (streamable HTTP at /mcp) on its own port."""

from __future__ import annotations

from pathlib import Path

import typer

from steward.cli.context import DbOption, console, db_url, fail, handled, open_db


def gateway(
    agent: list[Path] = typer.Option(
        [],
        "--agent",
        "-a",
        help="A spec file or a directory of them (repeatable); "
        "the gateway serves those with `model: external`.",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8701, "--port", min=1, max=65535),
    hold_seconds: float = typer.Option(
        0.0,
        "--hold-seconds",
        min=0.0,
        max=300.0,
        help="Hold a call that needs approval open this long (progress notifications) "
        "before answering that it awaits approval.",
    ),
    decide_url: str | None = typer.Option(
        None,
        "--decide-url",
        help="Base URL of the steward server where people decide "
        "(named in awaiting-approval answers), e.g. http://127.0.0.1:8700.",
    ),
    calls_per_run: int = typer.Option(100, "--calls-per-run", min=1),
    jwt_issuer: str | None = typer.Option(
        None, "--jwt-issuer", help="Also accept JWTs from this OAuth issuer."
    ),
    jwt_jwks_url: str | None = typer.Option(None, "--jwt-jwks-url", help="The issuer's JWKS."),
    jwt_resource: str | None = typer.Option(
        None,
        "--jwt-resource",
        help="This gateway's URL (the tokens' audience), e.g. https://gateway.example/mcp.",
    ),
    jwt_agent_claim: str = typer.Option("steward_agent", "--jwt-agent-claim"),
    jwt_default_agent: str | None = typer.Option(None, "--jwt-default-agent"),
    db: str | None = DbOption,
) -> None:
    """Serve MCP at http://HOST:PORT/mcp: each client (bearer: an agent key, or a JWT)
    lists and calls the tools of its agent's spec, every call through the gate."""
    with handled():
        try:
            import uvicorn

            from steward.gateway.app import create_gateway_app
            from steward.gateway.config import GatewayConfig, JwtIssuer
        except ImportError as exc:
            fail(
                f"the gateway needs the MCP SDK 2.x: pip install 'steward-governance\\[mcp]' ({exc})"
            )
        jwt = None
        if jwt_issuer or jwt_jwks_url or jwt_resource:
            if not (jwt_issuer and jwt_jwks_url and jwt_resource):
                fail("--jwt-issuer, --jwt-jwks-url and --jwt-resource go together")
            jwt = JwtIssuer(
                jwt_issuer, jwt_jwks_url, jwt_resource, agent_claim=jwt_agent_claim,
                default_agent=jwt_default_agent,
            )  # fmt: skip
        config = GatewayConfig(
            hold_seconds=hold_seconds, decide_url=decide_url, calls_per_run=calls_per_run, jwt=jwt
        )
        open_db(db, create=True).close()  # create and migrate before serving
        app, served = create_gateway_app(db_url(db), list(agent), config, host=host)
        console.print(
            f"steward MCP gateway http://{host}:{port}/mcp · agents: {', '.join(served)} · "
            f"db {db_url(db)}"
        )
        uvicorn.run(app, host=host, port=port, log_level="warning")
