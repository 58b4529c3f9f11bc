"""Honest outcomes for slow tools: a call cut off at its timeout is recorded for what it
may have done, an attempt that may still run is never retried, and tools run on their
agent's own bounded workers, never the event loop's default pool."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from steward.core.events import ToolFailed, ToolStarted, ToolSucceeded
from steward.core.messages import ToolCall
from steward.gate import CallStatus, Gate
from steward.policy import compile_policy
from steward.spec import load_spec_text
from steward.testing import MemoryScope, memory_gate_config
from steward.tools import Tool, ToolContext, tool

SPEC = """
name: %s
model: scripted
tools: [%s]
decision_authority:
  autonomous: [%s]
limits: {tool_timeout_seconds: %s, max_retries: 2%s}
"""


class Downstream:
    """A system of record that a tool writes to: each write lands once per call it gets,
    after the tool has slept past its timeout. `hold` keeps a tool's thread busy."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.hold = threading.Event()

    def tools(self) -> list[Tool]:
        down = self

        @tool(effect="write", keyed=True)
        def keyed_write(ctx: ToolContext) -> str:
            down.calls.append(ctx.idempotency_key)
            time.sleep(0.5)  # far past the 0.1 s timeout
            down.writes.append(ctx.idempotency_key)
            return "written"

        @tool(effect="write")
        def plain_write(note: str) -> str:
            down.calls.append(note)
            time.sleep(0.5)
            down.writes.append(note)
            return "written"

        @tool(effect="write", abandon_on_timeout=True)
        def abandonable_write(note: str) -> str:
            down.calls.append(note)
            time.sleep(0.5)
            return "too late to count"

        @tool(effect="write", keyed=True)
        async def async_write(ctx: ToolContext) -> str:
            down.calls.append(ctx.idempotency_key)
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                down.cancelled.append(ctx.idempotency_key)
                raise
            down.writes.append(ctx.idempotency_key)
            return "written"

        @tool(effect="read")
        def stuck_read(query: str) -> str:
            down.calls.append(query)
            down.hold.wait(30)
            return "found"

        @tool(effect="read")
        def quick_read(query: str) -> str:
            down.calls.append(query)
            return "found"

        return [
            keyed_write,
            plain_write,
            abandonable_write,
            async_write,
            stuck_read,
            quick_read,
        ]


def make_gate(
    down: Downstream, *, name: str = "ops", timeout: float = 0.1, extra: str = ""
) -> Gate:
    tools = down.tools()
    names = ", ".join(t.name for t in tools)
    loaded = load_spec_text(SPEC % (name, names, names, timeout, extra), f"{name}.yaml")
    policy = compile_policy(loaded.spec, loaded.version, {t.name: t for t in tools})
    return Gate(policy, {t.name: t for t in tools}, memory_gate_config())


@pytest.fixture
def down() -> Iterator[Downstream]:
    downstream = Downstream()
    yield downstream
    downstream.hold.set()  # let any stuck thread go


async def call(gate: Gate, scope: MemoryScope, name: str, step: int = 1, **args: Any) -> Any:
    return await gate.process(scope, ToolCall(f"c{step}", name, args), step)


def failures(scope: MemoryScope) -> list[ToolFailed]:
    return [e for e in scope.events if isinstance(e, ToolFailed)]


async def settle(seconds: float = 0.8) -> None:
    """Give threads the gate left running the time to finish."""
    await asyncio.sleep(seconds)


async def test_a_keyed_write_that_outlives_its_timeout_is_unknown_and_lands_once(
    down: Downstream,
) -> None:
    gate, scope = make_gate(down), MemoryScope()
    outcome = await call(gate, scope, "keyed_write")
    assert (outcome.status, outcome.error_code) == (CallStatus.UNKNOWN, "tool.timeout")
    [failed] = failures(scope)
    assert failed.outcome_unknown and failed.attempts == 1
    assert failed.on_timeout == "left_running"
    assert len([e for e in scope.events if isinstance(e, ToolStarted)]) == 1
    await settle()
    # max_retries is 2, yet the write is never handed over again while it may still run
    assert down.calls == ["run_test:1:c1"]
    assert down.writes == ["run_test:1:c1"], "the thread went on and wrote, once"


async def test_an_unkeyed_write_that_times_out_is_unknown_not_failed(down: Downstream) -> None:
    gate, scope = make_gate(down), MemoryScope()
    outcome = await call(gate, scope, "plain_write", note="n1")
    assert outcome.status is CallStatus.UNKNOWN
    [failed] = failures(scope)
    assert (failed.code, failed.outcome_unknown, failed.on_timeout) == (
        "tool.timeout",
        True,
        "left_running",
    )
    assert "may still be running" in failed.message
    await settle()
    assert down.writes == ["n1"]


async def test_a_write_declared_safe_to_abandon_fails_on_timeout(down: Downstream) -> None:
    gate, scope = make_gate(down), MemoryScope()
    outcome = await call(gate, scope, "abandonable_write", note="n1")
    assert (outcome.status, outcome.error_code) == (CallStatus.FAILED, "tool.timeout")
    [failed] = failures(scope)
    assert not failed.outcome_unknown and failed.on_timeout == "left_running"
    assert down.calls == ["n1"], "not retried: it is not keyed"


async def test_an_async_tool_is_cancelled_at_its_timeout_and_that_is_recorded(
    down: Downstream,
) -> None:
    gate, scope = make_gate(down), MemoryScope()
    outcome = await call(gate, scope, "async_write")
    # A cancelled attempt runs no more, so a keyed write may be tried again with its key;
    # the last attempt was cut off after it had begun, so the outcome is unknown.
    assert outcome.status is CallStatus.UNKNOWN
    [failed] = failures(scope)
    assert (failed.code, failed.on_timeout, failed.attempts) == ("tool.timeout", "cancelled", 3)
    assert "cancelled" in failed.message
    assert down.cancelled == down.calls == ["run_test:1:c1"] * 3
    await settle()
    assert down.writes == [], "a cancelled coroutine does not go on to write"


async def test_a_read_left_running_is_not_retried_and_is_a_plain_failure(
    down: Downstream,
) -> None:
    gate, scope = make_gate(down), MemoryScope()
    outcome = await call(gate, scope, "stuck_read", query="q")
    assert (outcome.status, outcome.error_code) == (CallStatus.FAILED, "tool.timeout")
    [failed] = failures(scope)
    assert not failed.outcome_unknown and failed.on_timeout == "left_running"
    assert down.calls == ["q"], "a second attempt would only hold a second worker"


async def test_a_full_pool_makes_a_call_wait_then_fail_without_reaching_the_tool(
    down: Downstream,
) -> None:
    gate, scope = make_gate(down, extra=", tool_workers: 1"), MemoryScope()
    first = await call(gate, scope, "stuck_read", step=1, query="hangs")
    assert first.error_code == "tool.timeout"
    began = time.perf_counter()
    second = await call(gate, scope, "plain_write", step=2, note="never")
    waited = time.perf_counter() - began
    assert (second.status, second.error_code) == (CallStatus.FAILED, "tool.no_worker")
    assert 0.08 < waited < 1.0, "it waited for a worker, bounded by its timeout"
    failed = failures(scope)[-1]
    assert (failed.on_timeout, failed.outcome_unknown) == ("not_started", False)
    assert "tool_workers" in failed.message
    down.hold.set()
    await settle(0.2)
    assert "never" not in down.calls, "a call withdrawn from the queue never runs later"
    third = await call(gate, scope, "quick_read", step=3, query="after")
    assert third.status is CallStatus.EXECUTED


def _fill_default_pool(loop: asyncio.AbstractEventLoop, hold: threading.Event) -> int:
    """Occupy every thread of the loop's default executor, as hung store reads would."""
    size = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
    for _ in range(size):
        loop.run_in_executor(None, hold.wait, 30)
    return size


async def test_a_thread_tool_sees_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    @tool(effect="read")
    def whoami() -> str:
        return request_id.get("none")

    loaded = load_spec_text(SPEC % ("ctx", "whoami", "whoami", 1.0, ""), "ctx.yaml")
    tools = {"whoami": whoami}
    gate = Gate(compile_policy(loaded.spec, loaded.version, tools), tools, memory_gate_config())
    request_id.set("req-7")
    outcome = await call(gate, MemoryScope(), "whoami")
    assert outcome.result == "req-7"


async def test_tools_never_run_on_the_loops_default_pool(down: Downstream) -> None:
    gate, scope = make_gate(down, timeout=2.0), MemoryScope()
    blocker = threading.Event()
    try:
        _fill_default_pool(asyncio.get_running_loop(), blocker)
        began = time.perf_counter()
        outcome = await call(gate, scope, "quick_read", query="q")
        assert outcome.status is CallStatus.EXECUTED
        assert time.perf_counter() - began < 1.0
    finally:
        blocker.set()


async def test_a_hung_agent_does_not_block_another_agents_tools() -> None:
    hung, other = Downstream(), Downstream()
    size = min(32, (os.cpu_count() or 1) + 4) + 2  # more than the default pool holds
    stuck_gate = make_gate(hung, name="stuck", timeout=0.2, extra=f", tool_workers: {size}")
    other_gate = make_gate(other, name="other", timeout=2.0)
    try:
        stuck_scope = MemoryScope(run_id="run_stuck", agent="stuck")
        stuck = await asyncio.gather(
            *(
                call(stuck_gate, stuck_scope, "stuck_read", step=i, query=str(i))
                for i in range(size)
            )
        )
        assert {o.error_code for o in stuck} == {"tool.timeout"}
        assert len(hung.calls) == size  # every worker of `stuck` is held by a hung tool
        began = time.perf_counter()
        outcome = await call(other_gate, MemoryScope(agent="other"), "quick_read", query="q")
        assert outcome.status is CallStatus.EXECUTED
        assert time.perf_counter() - began < 1.0
        assert [e for e in stuck_scope.events if isinstance(e, ToolSucceeded)] == []
    finally:
        hung.hold.set()
