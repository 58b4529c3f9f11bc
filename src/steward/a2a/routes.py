"""The A2A routes a steward server adds, per agent it serves:

    GET  /a2a/{agent}/.well-known/agent-card.json   the signed card (public, like any card)
    POST /a2a/{agent}                                 JSON-RPC 1.0 (a steward key as Bearer)
    GET  /a2a/.well-known/jwks.json                   the public key that signs the cards
    GET  /.well-known/agent-card.json                 the card, when one agent is served

The JSON-RPC endpoint authenticates with steward keys (401 without one) and authorizes
`start_run` on that agent (403 otherwise) before the SDK's dispatcher sees the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.tasks import InMemoryTaskStore
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from steward.a2a.card import JWKS_PATH, CardSigner, agent_path, build_card
from steward.a2a.config import A2AConfig
from steward.a2a.executor import PRINCIPAL, StewardExecutor
from steward.runtime import AgentRuntime
from steward.security.keys import Permission, Principal
from steward.server.auth import check, principal
from steward.server.service import RunService


class StewardUser(User):
    """The authenticated steward principal, as the SDK sees it (tasks are scoped to it)."""

    def __init__(self, who: Principal) -> None:
        self.who = who

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.who.principal_id


class _Context(DefaultServerCallContextBuilder):
    """The SDK's context (headers, extensions) with the steward principal as its user."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[PRINCIPAL] = request.state.steward_principal
        return context

    def build_user(self, request: Request) -> User:
        return StewardUser(request.state.steward_principal)


def _base_url(request: Request, config: A2AConfig) -> str:
    return config.public_url or str(request.base_url).rstrip("/")


def install(
    app: FastAPI, agents: Iterable[AgentRuntime], config: A2AConfig
) -> Callable[[], Awaitable[None]]:
    """Add the A2A routes for `agents` to `app` (whose lifespan sets `state.service`);
    returns what stops the tasks in flight (call it before the RunService shuts down)."""
    signer = CardSigner(config)
    served = list(agents)

    def service() -> RunService:
        found: RunService = app.state.service
        return found

    async def jwks(request: Request) -> Response:
        return JSONResponse(signer.jwks)

    app.add_route(JWKS_PATH, jwks, methods=["GET"], include_in_schema=False)
    handlers = [_install_agent(app, agent, signer, service) for agent in served]
    if len(served) == 1:
        app.add_route(
            AGENT_CARD_WELL_KNOWN_PATH, _card_route(served[0], signer), methods=["GET"],
            include_in_schema=False,
        )  # fmt: skip

    async def close() -> None:
        for handler in handlers:
            await handler.aclose()

    return close


def _card_route(agent: AgentRuntime, signer: CardSigner):  # type: ignore[no-untyped-def]
    async def card(request: Request) -> Response:
        base = _base_url(request, signer.config)
        return JSONResponse(signer.signed(build_card(agent, base), base))

    return card


def _install_agent(
    app: FastAPI, agent: AgentRuntime, signer: CardSigner, service: Callable[[], RunService]
) -> DefaultRequestHandler:
    path = agent_path(agent.name)
    executor = StewardExecutor(agent.name, service)
    handler = DefaultRequestHandler(
        agent_executor=executor,
        task_store=InMemoryTaskStore(),
        agent_card=build_card(agent, ""),
    )
    dispatcher = JsonRpcDispatcher(request_handler=handler, context_builder=_Context())

    async def rpc(request: Request) -> Response:
        who = await asyncio.to_thread(principal, request)  # 401 (ApiError) without a key
        check(who, Permission.START_RUN, agent.name)  # 403 with the reason
        request.state.steward_principal = who
        return await dispatcher.handle_requests(request)

    app.add_route(path, rpc, methods=["POST"], include_in_schema=False)
    app.add_route(
        f"{path}{AGENT_CARD_WELL_KNOWN_PATH}", _card_route(agent, signer), methods=["GET"],
        include_in_schema=False,
    )  # fmt: skip
    return handler
