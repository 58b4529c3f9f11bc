"""The process's MCP sessions, on one event loop in a thread of its own.

A session belongs to the loop that opened it, while steward calls tools from whichever
loop runs the agent (the server's, a CLI's `asyncio.run`, a test's) and lists tools from
plain synchronous code (building an agent). So every session lives on the hub's loop and
the rest of steward hands it coroutines: `await hub.run(...)` from a loop, `hub.wait(...)`
from synchronous code. A caller cancelled while it waits (a call's timeout) cancels the
work on the hub too. The sessions stop when the process exits (`stop_servers`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import hashlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from steward.mcp.supervisor import Supervisor
from steward.spec.models import McpServer

T = TypeVar("T")


class McpHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, Supervisor] = {}
        self._guard = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="steward-mcp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        loop = self._running()
        if threading.current_thread() is self._thread:
            work.close()
            raise RuntimeError("the MCP hub cannot wait on itself")
        return asyncio.run_coroutine_threadsafe(work, loop)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` on the hub from any loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(self.submit(work))

    def wait(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `work` on the hub from synchronous code, for at most `timeout` seconds."""
        future = self.submit(work)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g}s") from None

    def supervisor(self, name: str, config: McpServer) -> Supervisor:
        """The one supervisor of this server in this process (the same name and transport
        settings share a session, whichever agent lists it)."""
        digest = hashlib.sha256(
            config.model_dump_json(include={"command", "args", "env", "env_from", "url", "auth_header",
                                            "auth_env", "protocol", "connect_timeout_seconds"}).encode()
        ).hexdigest()[:16]  # fmt: skip
        key = f"{name}:{digest}"
        with self._guard:
            found = self._servers.get(key)
            if found is None:
                found = self._servers[key] = Supervisor(name, config)
            return found

    def stop(self, timeout: float = 10.0) -> None:
        """Close every session (stdio servers' processes end) and the hub's loop."""
        with self._guard:
            loop, thread, servers = self._loop, self._thread, list(self._servers.values())
            self._servers.clear()
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return

        async def close_all() -> None:
            await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)

        with contextlib.suppress(Exception):  # stopping anyway: the loop ends below
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


HUB = McpHub()


def stop_servers() -> None:
    """Stop every MCP server this process started (also done when the process exits)."""
    HUB.stop()


atexit.register(stop_servers)
