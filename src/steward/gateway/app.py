"""`steward gateway`: the MCP gateway on its own port, over its own database connection,
journal and telemetry (the same consumers `steward serve` installs), with `/metrics`
for a viewer key and `/livez`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from steward.core.decision import Verdict
from steward.core.errors import StewardError
from steward.embed.steward import Steward, _spec_files
from steward.gateway.config import GatewayConfig
from steward.gateway.server import Gateway
from steward.security.keys import Permission, authorize
from steward.spec.loader import load_spec
from steward.spec.models import EXTERNAL, LoadedSpec
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.keys import authenticate_token
from steward.telemetry.metrics import CONTENT_TYPE, render
from steward.telemetry.setup import Telemetry, install


def gateway_routes(state: dict[str, ASGIApp]) -> list[Route]:
    """`/mcp` and the protected-resource metadata, served once `serving` has built the
    gateway into `state` (the gateway needs the open store: it is built by the lifespan)."""
    return [
        Route("/mcp", endpoint=_Lazy(state, "mcp"), methods=["GET", "POST", "DELETE"]),
        Route(
            "/.well-known/oauth-protected-resource{rest:path}", endpoint=_Lazy(state, "metadata")
        ),
    ]


@asynccontextmanager
async def serving(
    state: dict[str, ASGIApp],
    db: Database,
    journal: Journal,
    specs: list[LoadedSpec],
    config: GatewayConfig | None,
    *,
    host: str = "127.0.0.1",
    telemetry: Telemetry | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Gateway]:
    """Build the gateway over an open store and serve it (for an app's lifespan)."""
    steward = Steward(db, journal, specs)
    try:
        gateway = Gateway(
            steward, config, host=host,
            tracer=telemetry.tracer if telemetry is not None else None, registry=registry,
        )  # fmt: skip
        served = gateway.routes()
        async with gateway.running():
            state["mcp"] = served[0].app
            if len(served) > 1:
                state["metadata"] = served[1].app
            try:
                yield gateway
            finally:
                state.clear()
    finally:
        await steward.close()


def servable(specs: list[LoadedSpec]) -> list[str]:
    """The agents a gateway serves (`model: external`); StewardError when none."""
    served = sorted(s.spec.name for s in specs if s.spec.model.name == EXTERNAL)
    if not served:
        raise StewardError(
            "the gateway serves agents whose spec says `model: external` (the MCP client is "
            f"the agent's loop); none of {len(specs)} spec(s) does",
            code="gateway.no_agents",
        )
    return served


def create_gateway_app(
    db_url: str,
    specs: list[Path],
    config: GatewayConfig | None = None,
    *,
    host: str = "127.0.0.1",
) -> tuple[Starlette, list[str]]:
    """The gateway alone as an ASGI app, and the agents it serves. Specs load (and the
    gateway refuses to start without an agent it can serve) when the app is built; the
    store opens for its lifespan."""
    loaded = [load_spec(path) for path in _spec_files(specs)]
    served = servable(loaded)
    state: dict[str, ASGIApp] = {}
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database.open(db_url)
        journal = Journal(db)
        telemetry = install(journal, registry)
        try:
            async with serving(state, db, journal, loaded, config, host=host,
                               telemetry=telemetry, registry=registry) as gateway:  # fmt: skip
                app.state.gateway = gateway
                yield
        finally:
            journal.close()
            if telemetry is not None:
                telemetry.close()
            db.close()

    routes = [
        *gateway_routes(state),
        Route("/metrics", endpoint=_metrics(registry)),
        Route("/livez", endpoint=lambda _: JSONResponse({"status": "ok"})),
    ]
    return Starlette(routes=routes, lifespan=lifespan), served


class _Lazy:
    """A route's ASGI app, built by the lifespan (the gateway needs the open store)."""

    def __init__(self, state: dict[str, ASGIApp], key: str) -> None:
        self.state = state
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.state.get(self.key)
        if app is None:
            await PlainTextResponse("not configured", 404)(scope, receive, send)
            return
        await app(scope, receive, send)


def _metrics(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        db = request.app.state.gateway.steward.db
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        who = authenticate_token(db, token.strip()) if scheme.lower() == "bearer" else None
        if who is None:
            return JSONResponse({"error": {"code": "auth.unauthenticated"}}, 401,
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if authorize(who, Permission.READ).verdict is not Verdict.ALLOW:
            return JSONResponse({"error": {"code": "auth.forbidden"}}, 403)
        return Response(render(registry), media_type=CONTENT_TYPE)

    return metrics
