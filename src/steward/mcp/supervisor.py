"""One MCP server's session, supervised: started lazily, restarted with backoff, every
request bounded in time; a server that is down is a typed tool error, never a hang.

The session lives in a task of its own (`_hold`) for as long as it is open, because the
SDK's transports are context managers that must be entered and left by one task. Calls
come from other tasks of the same loop (steward/mcp/hub.py runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from steward.core.backoff import backoff_delay
from steward.core.errors import ToolExecutionError
from steward.spec.models import McpServer

UNAVAILABLE = "mcp.server_unavailable"  # the server cannot be started or reached, or died
TIMEOUT = "mcp.timeout"  # no answer within the call's time
PROTOCOL = "mcp.error"  # the server answered with a JSON-RPC error
RESTART_BASE, RESTART_CAP = 0.5, 30.0  # seconds of backoff between starts (full jitter)
MAX_PAGES = 100  # a paginating tools/list that never ends cannot hang a listing

# a transport whose other end went away
_GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError)

Watcher = Callable[[list[types.Tool]], None]


def _transport(config: McpServer) -> Any:
    if config.command is not None:
        missing = [name for name in config.env_from if name not in os.environ]
        if missing:
            raise ToolExecutionError(
                f"env_from names variables that are not set: {', '.join(missing)}",
                code=UNAVAILABLE,
                retryable=False,
            )
        env = {name: os.environ[name] for name in config.env_from} | dict(config.env)
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=env or None
        )
        return stdio_client(params)
    assert config.url is not None
    headers: dict[str, str] = {}
    if config.auth_env is not None:
        value = os.environ.get(config.auth_env)
        if not value:
            raise ToolExecutionError(
                f"the environment variable {config.auth_env} (the {config.auth_header} "
                "header for this MCP server) is not set",
                code=UNAVAILABLE,
                retryable=False,
            )
        headers[config.auth_header] = value
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return _OwnedHttp(http, config.url)


class _OwnedHttp:
    """streamable_http_client over our own httpx client, closing both."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self._http, self._url, self._stack = http, url, AsyncExitStack()

    async def __aenter__(self) -> Any:
        await self._stack.enter_async_context(self._http)
        return await self._stack.enter_async_context(
            streamable_http_client(self._url, http_client=self._http)
        )

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


class Supervisor:
    """The session with one server. Every method runs on the hub's loop."""

    def __init__(self, name: str, config: McpServer) -> None:
        self.name = name
        self.config = config
        self.failures = 0  # consecutive failed starts or crashes
        self.starts = 0
        self.last_error = ""
        self.protocol_version = ""  # what the last session negotiated
        self._retry_at = 0.0
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._stopping = False
        self._watchers: list[Watcher] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, watcher: Watcher) -> None:
        """Call `watcher` with every listing of the server's tools (each start lists them)."""
        if watcher not in self._watchers:
            self._watchers.append(watcher)

    @property
    def alive(self) -> bool:
        return self._client is not None and self._holder is not None and not self._holder.done()

    def _down(self, message: str) -> ToolExecutionError:
        return ToolExecutionError(f"MCP server '{self.name}': {message}", code=UNAVAILABLE,
                                  retryable=False)  # fmt: skip

    async def _ensure(self) -> tuple[Client, list[types.Tool] | None]:
        """The open session, starting it when it is not; with the listing a start made."""
        if self.alive:
            assert self._client is not None
            return self._client, None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.alive:
                assert self._client is not None
                return self._client, None
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise self._down(f"down ({self.last_error}); the next start is in {wait:.1f}s")
            try:
                async with asyncio.timeout(self.config.connect_timeout_seconds):
                    client = await self._start()
                    listing = await self._list(client)
            except Exception as exc:
                self._failed(exc if not isinstance(exc, TimeoutError) else TimeoutError(
                    f"no answer within {self.config.connect_timeout_seconds:g}s"))  # fmt: skip
                await self._close()
                raise self._down(f"cannot start: {self.last_error}") from None
            self.starts += 1
            self._notify(listing)
            return client, listing

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        self._retry_at = time.monotonic() + backoff_delay(self.failures, RESTART_BASE, RESTART_CAP)

    async def _start(self) -> Client:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        self._closing = asyncio.Event()
        self._holder = asyncio.create_task(self._hold(ready, self._closing))
        client = await ready
        self._client = client
        return client

    async def _hold(self, ready: asyncio.Future[Client], closing: asyncio.Event) -> None:
        """Open the session, hold it until asked to close; a crash is recorded for backoff."""
        try:
            transport = _transport(self.config)
            async with Client(
                transport, cache=None, mode=self.config.protocol, message_handler=self._on_message
            ) as client:
                self.protocol_version = client.protocol_version
                if not ready.done():
                    ready.set_result(client)
                listener = self._listener(client)
                try:
                    await closing.wait()
                finally:
                    if listener is not None:
                        listener.cancel()
                        with contextlib.suppress(BaseException):
                            await listener
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            elif not self._stopping:
                self._failed(exc)  # the server died under an open session
        finally:
            self._client = None

    async def _on_message(self, message: Any) -> None:
        """A server that says its tools changed (notifications/tools/list_changed, sent
        unasked on a 2025 session) is listed again at once: a changed definition is
        quarantined before the next call, not at the next build."""
        if isinstance(message, types.ToolListChangedNotification):
            task = asyncio.get_running_loop().create_task(self._relist())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _listener(self, client: Client) -> asyncio.Task[None] | None:
        """On a 2026-07-28 session, a task that listens for the server's tool changes
        (`subscriptions/listen`), when the server says its tool list can change."""
        tools = client.server_capabilities.tools
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or tools is None:
            return None
        if not tools.list_changed:
            return None

        async def listen() -> None:
            with contextlib.suppress(Exception):  # a server that cannot: builds still list
                async with client.listen(tools_list_changed=True) as changes:
                    async for _ in changes:
                        await self._relist()

        return asyncio.get_running_loop().create_task(listen())

    async def _relist(self) -> None:
        with contextlib.suppress(Exception):  # a failed listing changes no pin
            await self.list_tools()

    async def _list(self, client: Client) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    def _notify(self, listing: list[types.Tool]) -> None:
        for watcher in self._watchers:
            watcher(listing)

    async def list_tools(self) -> list[types.Tool]:
        """The server's tools as it lists them now (a fresh tools/list, never a cache)."""
        client, listing = await self._ensure()
        if listing is not None:
            return listing
        try:
            async with asyncio.timeout(self.config.connect_timeout_seconds):
                listing = await self._list(client)
        except Exception as exc:
            raise await self._error(exc, self.config.connect_timeout_seconds) from None
        self._notify(listing)
        return listing

    async def call(
        self, tool: str, arguments: dict[str, Any], seconds: float
    ) -> types.CallToolResult:
        client, _ = await self._ensure()
        try:
            async with asyncio.timeout(seconds):
                result = await client.call_tool(tool, arguments, read_timeout_seconds=seconds)
        except Exception as exc:
            raise await self._error(exc, seconds, sent=True) from None
        self.failures = 0  # a call answered: the server is healthy again
        return result

    async def _error(
        self, exc: Exception, seconds: float, *, sent: bool = False
    ) -> ToolExecutionError:
        """The typed error for a failed request. A session that ended (the process died,
        the connection closed) is closed here and counts toward the restart backoff."""
        if isinstance(exc, ToolExecutionError):
            return exc
        if isinstance(exc, TimeoutError):
            return ToolExecutionError(
                f"MCP server '{self.name}' gave no answer within {seconds:g}s",
                code=TIMEOUT, retryable=False,
            )  # fmt: skip
        code = getattr(getattr(exc, "error", None), "code", None)
        if not self.alive or code == types.CONNECTION_CLOSED or isinstance(exc, _GONE):
            self._failed(exc)
            await self._close()
            lost = self._down(
                f"the session ended during the request ({type(exc).__name__}: {exc})"
                + ("; it may or may not have taken effect" if sent else "")
            )
            lost.outcome_unknown = sent
            return lost
        detail = f" (JSON-RPC error {code})" if code is not None else ""
        return ToolExecutionError(f"MCP server '{self.name}'{detail}: {exc}", code=PROTOCOL,
                                  retryable=False)  # fmt: skip

    async def _close(self) -> None:
        if self._closing is not None:
            self._closing.set()
        holder = self._holder
        if holder is not None and not holder.done():
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.shield(holder)
            except (TimeoutError, Exception):
                holder.cancel()
        self._client = None

    async def stop(self) -> None:
        """Close the session (a stdio server's process ends with it)."""
        self._stopping = True
        try:
            await self._close()
        finally:
            self._stopping = False
