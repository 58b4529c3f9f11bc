"""What the token relay (store/token_relay.py) costs a run on PostgreSQL: µs per step of
runs whose every model turn streams 20 text chunks (ScriptedModel, zero latency), with
(a) no text sink (nobody could stream: the worker on SQLite), (b) the relay's sink and
nobody following, (c) the relay's sink while a following relay (a server) follows
every run, which then hears every chunk. Also the cost of one `publish` call.

    STEWARD_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/bench_token_relay.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from steward.core.events import RunStatus
from steward.core.messages import ModelResponse, ToolCall
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.runtime.runner import new_run_id
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.token_relay import TokenRelay
from steward.testing import ScriptedModel, final
from steward.testing.postgres import postgres_schema
from steward.tools import Tool, tool

STEPS = 5
RUNS = 80
WORDS = " ".join(f"word{i}" for i in range(20))  # 20 chunks per turn

SPEC = """
name: bench-relay
model: scripted
tools: [lookup]
decision_authority:
  autonomous: [lookup]
limits: {max_steps: 20, max_run_seconds: 60}
"""


async def lookup(n: int) -> dict[str, Any]:
    """A trivial read."""
    return {"id": n}


TOOLS: list[Tool] = [tool(effect="read")(lookup)]


def agent() -> AgentRuntime:
    turns = [
        ModelResponse(
            "scripted",
            text=WORDS,
            tool_calls=(ToolCall(f"c{s}", "lookup", {"n": s}),),
            finish_reason="tool_calls",
        )
        for s in range(STEPS)
    ]
    return build_agent(
        load_spec_text(SPEC, "bench.yaml"), TOOLS, model=ScriptedModel([*turns, final(WORDS)])
    )


async def one_run(
    runner: Runner, bot: AgentRuntime, sink: Callable[[str], Callable[[str], None]] | None,
    before: Callable[[str], None] | None = None,
) -> float:  # fmt: skip
    """µs per step of one run."""
    run_id = new_run_id()
    if before is not None:
        before(run_id)
    began = time.perf_counter()
    done = await runner.run(bot, "go", run_id=run_id, on_text=sink(run_id) if sink else None)
    took = time.perf_counter() - began
    assert done.status is RunStatus.SUCCEEDED, done
    assert isinstance(bot.model, ScriptedModel)
    bot.model.requests.clear()
    return took / (STEPS + 1) * 1e6


async def measure(url: str) -> None:
    db = Database.open(url)
    journal = Journal(db)
    runner = Runner(EmbeddedEngine(db, journal))
    heard: list[str] = []
    driver = TokenRelay(db).start()
    follower = TokenRelay(db, on_tokens=lambda _r, t: heard.append(t), drives=False).start()
    bot = agent()
    try:

        def followed(run_id: str) -> None:
            follower.follow(run_id).wait(5)
            deadline = time.monotonic() + 5
            while not driver.followed_elsewhere(run_id) and time.monotonic() < deadline:
                time.sleep(0.001)

        samples: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        for i in range(RUNS + 5):  # the three in turn, so the machine's drift hits all
            a = await one_run(runner, bot, None)
            b = await one_run(runner, bot, driver.sink)
            c = await one_run(runner, bot, driver.sink, followed)
            if i >= 5:  # warm-up
                for key, value in zip("abc", (a, b, c), strict=True):
                    samples[key].append(value)
        none, alone, watched = (statistics.median(samples[k]) for k in "abc")
        await asyncio.sleep(0.5)
        ticks = 100_000
        began = time.perf_counter()
        for _ in range(ticks):
            driver.publish("run_nobody", "x")
        unfollowed = (time.perf_counter() - began) / ticks * 1e9
        print(f"PostgreSQL, {STEPS} steps + answer per run, 20 chunks per turn, p50 of {RUNS} runs")
        print(f"  (a) no sink:                       {none:8.0f} µs/step")
        print(f"  (b) relay, nobody follows:         {alone:8.0f} µs/step ({alone - none:+.0f})")
        print(
            f"  (c) relay, a server follows:       {watched:8.0f} µs/step ({watched - none:+.0f})"
        )
        print(f"  publish() of an unfollowed run:    {unfollowed:8.0f} ns")
        print(f"  relay counts: driver {dict(driver.counts)}, follower {dict(follower.counts)}")
        print(f"  chunks heard by the follower: {len(heard)}")
    finally:
        driver.close()
        follower.close()
        journal.close()
        db.close()


def main() -> None:
    url = os.environ.get("STEWARD_TEST_POSTGRES_URL", "")
    if not url:
        sys.exit("set STEWARD_TEST_POSTGRES_URL")
    with postgres_schema(url) as schema_url:
        asyncio.run(measure(schema_url))


if __name__ == "__main__":
    main()
