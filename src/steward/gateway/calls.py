"""`tools/call` through the facade: each caller's calls are recorded in a run of its
agent (started with the caller as `started_by`, tagged `gateway: mcp`), so they cross the
same gate as any run's: validation, policy, limits, budgets, approvals, breaker, execute,
scan, audit, traces and metrics.

A call is known by its caller, tool and canonical arguments (the call key, part of its
call id in the journal). A call that waits for a person stays known by that key: the
identical call made again resumes it (it runs once the person approved, exactly once,
or answers the rejection) instead of asking again. The key lives in the journal and the
approval, so a gateway restarted between request and decision finds it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from steward.embed.outcomes import Allowed, Outcome, Waiting
from steward.embed.run import Run
from steward.embed.steward import Steward
from steward.gateway.config import GatewayConfig
from steward.gateway.identity import Caller
from steward.security.keys import STARTED_BY_PRINCIPAL
from steward.store.approvals import list_approvals
from steward.store.runs import RunRow, list_runs

log = logging.getLogger("steward.gateway")

GATEWAY_TAG = "gateway"  # tags["gateway"] == "mcp" on every run the gateway starts
_PREFIX = "mcp_"

Progress = Callable[[float, float, str], Awaitable[None]]  # (progress, total, message)


def call_key(tool: str, arguments: dict[str, Any]) -> str:
    """The identity of a call: its tool and canonical arguments (sorted keys)."""
    canonical = json.dumps(
        [tool, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _call_id(key: str) -> str:
    return f"{_PREFIX}{key}_{uuid.uuid4().hex[:8]}"


def key_of(call_id: str) -> str | None:
    """The call key inside a gateway call id, or None for another call id."""
    if not call_id.startswith(_PREFIX):
        return None
    key, _, _ = call_id.removeprefix(_PREFIX).partition("_")
    return key or None


@dataclass(frozen=True, slots=True)
class Answer:
    run_id: str
    outcome: Outcome
    held: bool = False  # a person decided while the request was held open


@dataclass(slots=True)
class _Use:
    """A run in use by one caller: calls in flight, calls waiting, whether replaced."""

    run: Run
    inflight: int = 0
    waiting: int = 0
    retired: bool = False


@dataclass(slots=True)
class _Seat:
    """One caller's state: its current run, its waiting calls by key."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    current: _Use | None = None
    calls: int = 0
    waiting: dict[str, tuple[_Use, str]] = field(default_factory=dict)
    keys: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)
    restored: bool = False


class GatewayCalls:
    def __init__(self, steward: Steward, config: GatewayConfig) -> None:
        self.steward = steward
        self.config = config
        self._seats: dict[tuple[str, str], _Seat] = {}

    # -- one call ----------------------------------------------------------------------

    async def call(
        self,
        caller: Caller,
        tool: str,
        arguments: dict[str, Any],
        *,
        progress: Progress | None = None,
    ) -> Answer:
        seat = await self._seat(caller)
        key = call_key(tool, arguments)
        async with self._key_lock(seat, key):  # the identical call: one at a time
            entry = seat.waiting.get(key)
            if entry is not None:
                use, call_id = entry
                use.inflight += 1
                try:
                    outcome = await self._resume(use.run, call_id)
                finally:
                    use.inflight -= 1
            else:
                use = await self._current(seat, caller)
                call_id = _call_id(key)
                use.inflight += 1
                try:
                    outcome = await use.run.call(tool, arguments, call_id=call_id)
                finally:
                    use.inflight -= 1
            held = False
            held_for = self.config.hold_seconds
            if (
                isinstance(outcome, Waiting)
                and held_for > 0
                and await self._hold(outcome, progress)
            ):
                held = True
                outcome = await self._resume(use.run, call_id)
            if isinstance(outcome, Waiting):
                if key not in seat.waiting:
                    use.waiting += 1
                    seat.waiting[key] = (use, call_id)
            elif seat.waiting.pop(key, None) is not None:
                use.waiting -= 1
            await self._retire_if_idle(use)
            return Answer(use.run.id, outcome, held)

    async def _resume(self, run: Run, call_id: str) -> Outcome:
        verdict = await run.resume(call_id)
        if isinstance(verdict, Allowed):  # resume(execute=True) runs it: never Allowed
            raise AssertionError(f"call {call_id} was allowed, not run")
        return verdict

    async def _hold(self, waiting: Waiting, progress: Progress | None) -> bool:
        """Hold the request open until a person decides or `hold_seconds` pass, telling
        the client every second; True when decided."""
        loop = asyncio.get_running_loop()
        total = self.config.hold_seconds
        began = loop.time()
        message = f"awaiting a person's approval ({waiting.approval_id})"
        while True:
            spent = loop.time() - began
            left = total - spent
            if left <= 0:
                return False
            if progress is not None:
                with contextlib.suppress(Exception):  # a client gone away is not our failure
                    await progress(round(spent, 3), total, message)
            try:
                await self.steward.wait_for_decision(waiting.approval_id, timeout=min(left, 1.0))
                return True
            except TimeoutError:
                continue

    @contextlib.asynccontextmanager
    async def _key_lock(self, seat: _Seat, key: str) -> Any:
        lock, users = seat.keys.get(key) or (asyncio.Lock(), 0)
        seat.keys[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = seat.keys[key]
            if users <= 1:
                del seat.keys[key]
            else:
                seat.keys[key] = (lock, users - 1)

    # -- the caller's runs -------------------------------------------------------------

    async def _seat(self, caller: Caller) -> _Seat:
        ident = (caller.agent, caller.principal.principal_id)
        seat = self._seats.get(ident)
        if seat is None:
            seat = self._seats.setdefault(ident, _Seat())
        if not seat.restored:
            async with seat.lock:
                if not seat.restored:
                    await self._restore(seat, caller)
                    seat.restored = True
        return seat

    async def _current(self, seat: _Seat, caller: Caller) -> _Use:
        use = seat.current
        if use is not None and seat.calls < self.config.calls_per_run:
            seat.calls += 1
            return use
        async with seat.lock:
            use = seat.current
            if use is None or seat.calls >= self.config.calls_per_run:
                run = await self.steward.start_run(
                    caller.agent,
                    f"MCP gateway calls of {caller.principal.label}",
                    started_by=caller.principal,
                    tags={GATEWAY_TAG: "mcp", "gateway.auth": caller.via},
                )
                old, use = use, _Use(run)
                seat.current, seat.calls = use, 0
                if old is not None:
                    old.retired = True
                    await self._retire_if_idle(old)
            seat.calls += 1
            return use

    async def _retire_if_idle(self, use: _Use) -> None:
        """Finish a replaced run once nothing is in flight or waiting in it."""
        if use.retired and use.inflight == 0 and use.waiting == 0 and not use.run.finished:
            await use.run.finish(f"gateway run closed after {use.run.steps} steps")

    async def _restore(self, seat: _Seat, caller: Caller) -> None:
        """After a restart: the caller's open gateway runs, and their calls still waiting
        for a person or approved but not yet run. Open runs with nothing waiting finish."""
        rows = await asyncio.to_thread(_open_runs, self.steward, caller)
        if not rows:
            return
        ids = {row.id for row in rows}
        approvals = await asyncio.to_thread(_live_approvals, self.steward, caller.agent, ids)
        uses: dict[str, _Use] = {}
        for row in rows:
            use = uses[row.id] = _Use(await self.steward.attach(row.id), retired=True)
            for run_id, key in approvals:
                if run_id != row.id:
                    continue
                call_id = key.removeprefix(f"{run_id}:").partition(":")[2]
                found = key_of(call_id)
                if found is not None and found not in seat.waiting:
                    seat.waiting[found] = (use, call_id)
                    use.waiting += 1
        for use in uses.values():
            await self._retire_if_idle(use)
        log.info("gateway: %s resumed %d open run(s), %d waiting call(s)",
                 caller.principal.label, len(rows), len(seat.waiting))  # fmt: skip


def _open_runs(steward: Steward, caller: Caller) -> list[RunRow]:
    found: list[RunRow] = []
    for status in ("running", "waiting"):
        rows = list_runs(steward.db, agent=caller.agent, status=status, limit=1000)
        found.extend(
            row for row in rows
            if row.tags.get(GATEWAY_TAG) == "mcp"
            and row.tags.get(STARTED_BY_PRINCIPAL) == caller.principal.principal_id
        )  # fmt: skip
    return found


def _live_approvals(steward: Steward, agent: str, run_ids: set[str]) -> list[tuple[str, str]]:
    """(run id, call key) of the approvals of these runs a retry must find: pending, or
    approved and not yet used."""
    found: list[tuple[str, str]] = []
    for status in ("pending", "approved"):
        for row in list_approvals(steward.db, status, 1000, agent=agent, newest_first=True):
            if row.run_id in run_ids and not row.used:
                found.append((row.run_id, row.key))
    return found
