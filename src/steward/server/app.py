"""The server: REST API under /v1, the console under /console, /metrics, the health
endpoints /livez, /readyz and /healthz (see `health`), and with `mcp` the governed MCP
gateway at /mcp (steward.gateway; needs the `mcp` extra).

`create_app` builds the FastAPI app; the database, journal, telemetry and the RunService
live for the app's lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import CollectorRegistry

from steward.runtime import AgentRuntime, build_agent
from steward.security.keys import Permission, Principal
from steward.server.api import agents as agents_api
from steward.server.api import approvals, audit, runs, stream
from steward.server.auth import requires
from steward.server.console import routes as console
from steward.server.errors import install_error_handlers
from steward.server.health import router as health_router
from steward.server.middleware import HygieneMiddleware
from steward.server.service import RunService
from steward.spec.loader import load_spec
from steward.store.database import Database
from steward.store.journal import Journal
from steward.telemetry.metrics import CONTENT_TYPE, render
from steward.telemetry.setup import install
from steward.telemetry.state import register_state

if TYPE_CHECKING:
    from steward.gateway.config import GatewayConfig

API_VERSION = "1"


def load_agents(paths: Iterable[Path]) -> list[AgentRuntime]:
    """Agents from spec files (a directory means every *.yaml in it)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return [build_agent(load_spec(f)) for f in files]


def create_app(
    db_url: str,
    agents: Iterable[AgentRuntime] = (),
    *,
    sweep_seconds: float = 15.0,
    recover: bool = True,
    grace_seconds: float = 10.0,
    mcp: GatewayConfig | None = None,
    host: str = "127.0.0.1",
) -> FastAPI:
    """The app over `db_url` serving `agents`. Every `sweep_seconds` it expires overdue
    approvals and lets their runs finish. With `recover`, runs left `running` by a
    stopped server resume at start; on stop, runs in flight get `grace_seconds`. With
    `mcp`, the MCP gateway serves the agents with `model: external` at /mcp."""
    loaded = {agent.name: agent for agent in agents}
    gateway_state: dict[str, Any] = {}
    if mcp is not None:
        from steward.gateway.app import servable

        servable([agent.loaded for agent in loaded.values()])  # none to serve: refuse now

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.open(db_url)
        journal = Journal(db)
        registry = CollectorRegistry()
        register_state(registry, db, loaded)  # in-flight gauges from the store, build info
        telemetry = install(journal, registry)
        service = RunService(db, journal, loaded)
        app.state.service = service
        app.state.registry = registry
        sweeper = asyncio.create_task(service.sweep_forever(sweep_seconds), name="steward-sweep")
        if recover:
            await service.recover()
        try:
            async with AsyncExitStack() as stack:
                if mcp is not None:
                    from steward.gateway.app import serving

                    specs = [agent.loaded for agent in loaded.values()]
                    await stack.enter_async_context(
                        serving(gateway_state, db, journal, specs, mcp, host=host,
                                telemetry=telemetry, registry=registry)
                    )  # fmt: skip
                yield
        finally:
            sweeper.cancel()
            await service.shutdown(grace_seconds)
            journal.close()
            if telemetry is not None:
                telemetry.close()
            db.close()

    app = FastAPI(
        title="steward",
        version=API_VERSION,
        description="Run AI agents under governance: runs, approvals, agents, audit.",
        lifespan=lifespan,
    )
    app.add_middleware(HygieneMiddleware)
    install_error_handlers(app, pages={console.PREFIX: console.error_page})
    routers = (runs.router, stream.router, approvals.router, agents_api.router, audit.router)
    for router in (*routers, health_router):
        app.include_router(router)
    app.include_router(console.router)
    if mcp is not None:
        from steward.gateway.app import gateway_routes

        app.router.routes.extend(gateway_routes(gateway_state))
    app.mount("/console/static", console.static_files(), name="console-static")

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(request: Request, who: Principal = Depends(requires(Permission.READ))) -> Response:
        """Prometheus exposition (scrape with a viewer key): in-flight gauges read from the
        store, the build, and what this process has run since it started."""
        return Response(render(request.app.state.registry), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    return app
