"""The gateway's MCP server: the SDK's low-level Server with two handlers (`tools/list`,
`tools/call`), its streamable HTTP transport in stateless mode (every revision the SDK
speaks: the 2025 handshake revisions and the stateless 2026-07-28), behind bearer auth.

`Gateway.routes()` are Starlette routes (`/mcp`, and the protected-resource metadata
when an OAuth issuer is configured): `steward gateway` serves them alone, `steward serve
--mcp` beside the API. Run them inside `async with gateway.running():`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp

from steward import __version__
from steward.core.errors import StewardError
from steward.embed.outcomes import Denied, Executed, Failed, Outcome, Waiting
from steward.embed.steward import Steward
from steward.gateway.calls import Answer, GatewayCalls
from steward.gateway.catalog import Catalogs
from steward.gateway.config import GatewayConfig
from steward.gateway.identity import Caller, StewardTokenVerifier, caller_of
from steward.gateway.spans import GatewayMetrics, McpSpans, annotate
from steward.runtime.agent import AgentRuntime, build_agent
from steward.spec.models import EXTERNAL

log = logging.getLogger("steward.gateway")

META = "steward.dev/call"  # `_meta` key of a call result: run, call, status, approval
LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTRUCTIONS = (
    "Tools governed by steward: each call is decided by policy; a call that needs a "
    "person's approval answers so, with the approval id; make the identical call again "
    "after the decision and it runs exactly once."
)


def gateway_agents(steward: Steward) -> dict[str, AgentRuntime]:
    """The agents the gateway serves: every loaded spec with `model: external` (the MCP
    client reasons; steward governs its calls), tools bound from the spec's toolsets."""
    found: dict[str, AgentRuntime] = {}
    for name, loaded in steward.specs.items():
        if loaded.spec.model.name == EXTERNAL:
            found[name] = build_agent(loaded, unbound=True)
    return found


class Gateway:
    def __init__(
        self,
        steward: Steward,
        config: GatewayConfig | None = None,
        *,
        host: str = "127.0.0.1",
        tracer: Tracer | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.steward = steward
        self.config = config or GatewayConfig()
        self.agents = gateway_agents(steward)
        if not self.agents:
            raise StewardError(
                "the gateway serves agents whose spec says `model: external` (the MCP client "
                f"is the agent's loop); none of the loaded specs does ({', '.join(steward.specs) or 'none'})",
                code="gateway.no_agents",
            )
        self.calls = GatewayCalls(steward, self.config)
        self.catalogs = Catalogs()
        self.metrics = GatewayMetrics(registry)
        self.server: Server[Any] = Server(
            "steward-gateway",
            version=__version__,
            title="steward MCP gateway",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            # for the 2026-07-28 `Mcp-Param-*` header check: without it the SDK runs the
            # whole tools/list handler once per tools/call (a third of a call's cost)
            get_tool_input_schema=self._input_schema,
        )
        self.server.middleware = [McpSpans(tracer, self.metrics)]
        security = None
        if host in LOOPBACK:  # DNS rebinding protection, as the SDK sets it up for loopback
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            # progress notifications need an event stream; otherwise plain JSON is cheaper
            json_response=self.config.hold_seconds == 0,
            security_settings=security,
        )
        self.verifier = StewardTokenVerifier(
            steward.db, set(self.agents), jwt=self.config.jwt,
            cache_seconds=self.config.auth_cache_seconds,
        )  # fmt: skip

    # -- serving -----------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    def routes(self, path: str = "/mcp") -> list[Route]:
        jwt = self.config.jwt
        # the SDK's settings keep a path-less issuer exact (RFC 8414 compares it verbatim)
        urls = (
            AuthSettings(issuer_url=jwt.issuer, resource_server_url=jwt.resource,
                         validate_token_resource=False)  # the verifier checks `aud` itself
            if jwt else None
        )  # fmt: skip
        metadata_url = (
            build_resource_metadata_url(urls.resource_server_url)
            if urls is not None and urls.resource_server_url is not None
            else None
        )
        endpoint: ASGIApp = RequireAuthMiddleware(
            StreamableHTTPASGIApp(self.manager), list(jwt.scopes) if jwt else [], metadata_url
        )
        endpoint = AuthContextMiddleware(endpoint)
        endpoint = AuthenticationMiddleware(endpoint, backend=BearerAuthBackend(self.verifier))
        routes = [Route(path, endpoint=endpoint, methods=["GET", "POST", "DELETE"])]
        if jwt is not None and urls is not None and urls.resource_server_url is not None:
            routes.extend(
                create_protected_resource_routes(
                    resource_url=urls.resource_server_url,
                    authorization_servers=[urls.issuer_url],
                    scopes_supported=list(jwt.scopes) or None,
                    resource_name="steward MCP gateway",
                )
            )
        return routes

    # -- the two methods ---------------------------------------------------------------

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """A tool's input schema by name, for any caller (the SDK asks before it knows
        who calls): None when no served agent has it, or two have it differently; the
        gate validates the arguments of every call in any case."""
        found = {
            json.dumps(tool.parameters, sort_keys=True): tool.parameters
            for agent in self.agents.values()
            if (tool := agent.tools.get(name)) is not None
        }
        return next(iter(found.values())) if len(found) == 1 else None

    def _caller(self, ctx: ServerRequestContext[Any, Any]) -> Caller:
        scope = getattr(ctx.request, "scope", None) or {}
        caller = caller_of(scope.get("user"))
        if caller is None:  # the route's auth let it through: never without a caller
            raise PermissionError("no authenticated caller")
        return caller

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = self._caller(ctx)
        return types.ListToolsResult(tools=self.catalogs.listing(self.agents[caller.agent]))

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = self._caller(ctx)
        arguments = dict(params.arguments or {})

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.session.report_progress(done, total, message)

        try:
            answer = await self.calls.call(caller, params.name, arguments, progress=progress)
        except StewardError as exc:  # the store, the kill switch: said as a tool error
            annotate(steward__call__status="error", error__type=exc.code)
            return _error(f"steward could not take this call ({exc.code}): {exc}", exc.code)
        outcome = answer.outcome
        annotate(
            steward__run__id=answer.run_id,
            gen_ai__tool__call__id=outcome.call_id,
            steward__call__status=outcome.status,
        )
        if isinstance(outcome, Waiting):
            annotate(steward__approval__id=outcome.approval_id)
        return result_of(answer, self.config)


def _error(text: str, code: str, **extra: Any) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        is_error=True,
        meta={META: {"status": "error", "code": code, **extra}},
    )


def where_to_decide(approval_id: str, config: GatewayConfig) -> dict[str, str]:
    where = {"cli": f"steward approvals approve {approval_id}"}
    if config.decide_url:
        base = config.decide_url.rstrip("/")
        where["console"] = f"{base}/console/approvals/{approval_id}"
        where["api"] = f"POST {base}/v1/approvals/{approval_id}/decision"
    return where


def result_of(answer: Answer, config: GatewayConfig) -> types.CallToolResult:
    """The MCP result of what the gate did with a call."""
    outcome: Outcome = answer.outcome
    meta: dict[str, Any] = {"run_id": answer.run_id, "call_id": outcome.call_id,
                            "status": outcome.status}  # fmt: skip
    if answer.held:  # a person decided while the request was held open
        meta["held"] = True
    if isinstance(outcome, Executed):
        value = outcome.result
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return types.CallToolResult(
            content=[types.TextContent(text=text)],
            structured_content=value if isinstance(value, dict) else None,
            meta={META: meta},
        )
    if isinstance(outcome, Waiting):
        where = where_to_decide(outcome.approval_id, config)
        meta.update(approval_id=outcome.approval_id, reason=outcome.reason, decide=where)
        places = "; ".join(f"{k}: {v}" for k, v in where.items())
        text = (
            f"AWAITING APPROVAL: this call needs a person's approval before it runs "
            f"(approval {outcome.approval_id}: {outcome.reason}). Decide it ({places}), then "
            "make the identical call again: once approved it runs exactly once."
        )
        return types.CallToolResult(
            content=[types.TextContent(text=text)],
            structured_content={"status": "awaiting_approval", "approval_id": outcome.approval_id,
                                "reason": outcome.reason, "decide": where},
            is_error=True,
            meta={META: meta},
        )  # fmt: skip
    if isinstance(outcome, Denied):
        reasons = [{"code": r.code, "message": r.message, "rule": r.rule} for r in outcome.reasons]
        meta.update(code=outcome.code, reasons=reasons)
        return types.CallToolResult(
            content=[
                types.TextContent(text=f"DENIED by steward ({outcome.code}): {outcome.message}")
            ],
            structured_content={"status": "denied", "code": outcome.code, "reasons": reasons},
            is_error=True,
            meta={META: meta},
        )
    assert isinstance(outcome, Failed)
    meta.update(code=outcome.code, unknown=outcome.unknown)
    said = f"the tool failed ({outcome.code}): {outcome.error}"
    if outcome.unknown:
        said += (
            " (it may or may not have taken effect; it is never repeated: a person reconciles it)"
        )
    return types.CallToolResult(
        content=[types.TextContent(text=said)],
        structured_content={"status": "failed", "code": outcome.code, "unknown": outcome.unknown},
        is_error=True,
        meta={META: meta},
    )
