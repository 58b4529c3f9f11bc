"""The server: REST API under /v1, the console under /console, /metrics, the health
endpoints /livez, /readyz and /healthz (see `health`), and with `mcp` the governed MCP
gateway at /mcp (steward.gateway; needs the `mcp` extra).

`create_app` builds the FastAPI app; the database, journal, telemetry and the RunService
live for the app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import CollectorRegistry

from steward.a2a.config import A2AConfig
from steward.core.errors import InvalidInput, StewardError
from steward.monitor.consumer import install_monitor
from steward.runtime import AgentRuntime, build_agent
from steward.security.keys import Permission, Principal
from steward.security.sso import SsoConfig
from steward.server.api import agents as agents_api
from steward.server.api import approvals, audit, labels, runs, stream
from steward.server.api import mcp as mcp_api
from steward.server.auth import requires
from steward.server.console import routes as console
from steward.server.console import sso as console_sso
from steward.server.errors import install_error_handlers
from steward.server.health import router as health_router
from steward.server.middleware import HygieneMiddleware
from steward.server.service import RemoteRuns, RunService
from steward.spec.loader import load_spec
from steward.store.database import Database
from steward.store.journal import Journal
from steward.telemetry.metrics import CONTENT_TYPE, render
from steward.telemetry.setup import install
from steward.telemetry.state import RelayCounts, register_state

if TYPE_CHECKING:
    from steward.gateway.config import GatewayConfig

API_VERSION = "1"
log = logging.getLogger("steward.server")


@dataclass(frozen=True, slots=True)
class TemporalTarget:
    """Where `steward serve --engine temporal` sends runs: workers drive them."""

    address: str
    task_queue: str
    namespace: str = "default"

    async def runs(self, db: Database, journal: Journal) -> RemoteRuns:
        from steward.engines.temporal import require

        require()
        from steward.engines.temporal.client import TemporalRuns, connect

        client = await connect(self.address, self.namespace)
        return TemporalRuns(client, db, journal, task_queue=self.task_queue)


def load_agents(paths: Iterable[Path], db: Database | None = None) -> list[AgentRuntime]:
    """Agents from spec files (a directory means every *.yaml in it). `db` pins the
    definitions of their MCP servers' tools."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return [build_agent(load_spec(f), db=db) for f in files]


def create_app(
    db_url: str,
    agents: Iterable[AgentRuntime] = (),
    *,
    sweep_seconds: float = 15.0,
    recover: bool = True,
    grace_seconds: float = 10.0,
    sso: SsoConfig | None = None,
    label: str = "production",
    temporal: TemporalTarget | None = None,
    mcp: GatewayConfig | None = None,
    host: str = "127.0.0.1",
    a2a: A2AConfig | None = None,
) -> FastAPI:
    """The app over `db_url` serving `agents`. Every `sweep_seconds` it expires overdue
    approvals and lets their runs finish. With `recover`, runs left `running` by a
    stopped server resume at start (on PostgreSQL, not those another live replica
    drives: store/leases.py), and each sweep takes over the runs a dead process left
    (RunService.take_over: on PostgreSQL, those nobody leases; with `temporal`, queued
    runs whose workflow never started); on stop, runs in flight get `grace_seconds`. With
    `sso`, people may also sign in to the console through that OpenID provider. A new run
    executes the version `label` points at, for agents that have that label. With
    `temporal`, `steward worker`s drive the runs as Temporal workflows instead. With `mcp`, the MCP gateway
    serves the agents with `model: external` at /mcp. With `a2a`, every agent is also
    served over the A2A protocol (steward/a2a, the `a2a` extra)."""
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
        specs = [agent.loaded.spec for agent in loaded.values()]
        drift = await asyncio.to_thread(install_monitor, db, journal, specs, registry)
        remote = None if temporal is None else await temporal.runs(db, journal)
        service = RunService(db, journal, loaded, remote, default_label=label)
        if service.relay.active:  # PostgreSQL: tokens cross processes
            registry.register(RelayCounts(service.relay))
        try:
            await asyncio.to_thread(service.remember_loaded)
        except StewardError as exc:  # a store down at start: the first run records them
            log.warning("could not record the loaded agents' versions: %s", exc)
        app.state.service = service
        app.state.registry = registry
        sweeper = asyncio.create_task(
            service.sweep_forever(sweep_seconds, take_over=recover), name="steward-sweep"
        )
        watcher = asyncio.create_task(service.watch_forever(), name="steward-watch")
        if recover:
            await service.recover()
        try:
            async with AsyncExitStack() as stack:
                if mcp is not None:
                    from steward.gateway.app import serving

                    served = [agent.loaded for agent in loaded.values()]
                    await stack.enter_async_context(
                        serving(gateway_state, db, journal, served, mcp, host=host,
                                telemetry=telemetry, registry=registry)
                    )  # fmt: skip
                yield
        finally:
            sweeper.cancel()
            watcher.cancel()
            if a2a_close is not None:
                await a2a_close()
            await service.shutdown(grace_seconds)
            journal.close()
            if drift is not None:
                drift.close()  # after the journal: its last batches are folded
            if telemetry is not None:
                telemetry.close()
            db.close()

    app = FastAPI(
        title="steward",
        version=API_VERSION,
        description="Run AI agents under governance: runs, approvals, agents, audit.",
        lifespan=lifespan,
    )
    if sso is not None:
        console_sso.install(app, sso)
    app.add_middleware(HygieneMiddleware)
    install_error_handlers(app, pages={console.PREFIX: console.error_page})
    routers = (runs.router, stream.router, approvals.router, agents_api.router, labels.router,
               audit.router, mcp_api.router)  # fmt: skip
    for router in (*routers, health_router):
        app.include_router(router)
    app.include_router(console.router)
    if mcp is not None:
        from steward.gateway.app import gateway_routes

        app.router.routes.extend(gateway_routes(gateway_state))
    app.mount("/console/static", console.static_files(), name="console-static")
    a2a_close: Callable[[], Awaitable[None]] | None = None
    if a2a is not None:
        try:
            from steward.a2a.routes import install as install_a2a
        except ImportError as exc:
            raise InvalidInput(
                f"serving A2A needs the `a2a` extra ({exc.name} is not installed): "
                "pip install 'steward-governance[a2a]'"
            ) from None
        a2a_close = install_a2a(app, loaded.values(), a2a)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(request: Request, who: Principal = Depends(requires(Permission.READ))) -> Response:
        """Prometheus exposition (scrape with a viewer key): in-flight gauges read from the
        store, the build, and what this process has run since it started."""
        return Response(render(request.app.state.registry), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    return app
