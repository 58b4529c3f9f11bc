"""Hung tools starve nobody but their own agent: several runs whose tool hangs far past
its timeout leave `POST /v1/runs` as fast as it was without them (a real uvicorn server
on loopback, measured against a baseline taken in the same test)."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from steward.runtime import AgentRuntime, build_agent
from steward.security.keys import Role
from steward.server import create_app
from steward.spec import load_spec_text
from steward.store import Database
from steward.store.keys import create_key
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool

SPEC = """
name: %s
model: scripted
tools: [%s]
decision_authority:
  autonomous: [%s]
limits: {tool_timeout_seconds: 0.3, max_retries: 2, max_run_seconds: 120}
"""
HUNG_RUNS = 8  # more than the loop's default pool holds on this machine's 2 cores
HOLD = threading.Event()
ENTERED: list[str] = []


@tool(effect="read")
def hang(order: str) -> str:
    """Look an order up in a system that does not answer."""
    ENTERED.append(order)
    HOLD.wait(60)
    return "shipped"


def agents() -> list[AgentRuntime]:
    """`stuck` calls the hanging tool; `quick` answers at once."""
    stuck = build_agent(
        load_spec_text(SPEC % ("stuck", "hang", "hang"), "stuck.yaml"),
        [hang],
        model=ScriptedModel([calls(("hang", {"order": "1"})), final("done", 0.9)]),
    )
    quick = build_agent(
        load_spec_text(SPEC % ("quick", "", ""), "quick.yaml"),
        [],
        model=ScriptedModel([final("done", 0.9)]),
    )
    return [stuck, quick]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    HOLD.clear()
    ENTERED.clear()
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    token = create_key(db, name="ops", role=Role.ADMIN, by="test")[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(url, agents(), grace_seconds=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        HOLD.set()  # the hung tools answer at last
        server.should_exit = True
        thread.join(timeout=20)
        db.close()


def post_latencies(client: httpx.Client, agent_name: str, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.post("/v1/runs", json={"agent": agent_name, "input": "where is 1?"})
        seconds.append(time.perf_counter() - began)
        assert response.status_code == 202, response.text
    return seconds


def test_runs_whose_tools_hang_do_not_slow_starting_runs(
    live: tuple[str, dict[str, str]],
) -> None:
    base_url, headers = live
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        baseline = post_latencies(client, "quick", 5)
        post_latencies(client, "stuck", HUNG_RUNS)
        deadline = time.monotonic() + 10
        while len(ENTERED) < HUNG_RUNS:
            assert time.monotonic() < deadline, f"only {len(ENTERED)} tools began"
            time.sleep(0.01)
        time.sleep(0.5)  # past every timeout: the hung threads are abandoned, still running
        during = post_latencies(client, "quick", 5)
        runs = client.get("/v1/runs", params={"agent": "stuck", "limit": 50}).json()["items"]
    assert statistics.median(during) < statistics.median(baseline) + 0.5, (baseline, during)
    assert max(during) < max(baseline) + 1.0, (baseline, during)
    assert len(ENTERED) == HUNG_RUNS, "a read left running is not retried into more workers"
    assert {r["status"] for r in runs} <= {"running", "succeeded"}
