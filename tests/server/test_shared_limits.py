"""Limits hold across processes: two real `steward serve` processes on one database (SQLite
file, PostgreSQL schema, or either with Redis as the limit store) share one rate window
and one daily budget. 100 concurrent runs against `20/hour` execute exactly 20 times;
$1 calls under a $10 daily budget spend exactly $10."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.schema import cost_ledger, runs

STEWARD = Path(sys.executable).with_name("steward")
REDIS_URL = os.environ.get("STEWARD_TEST_REDIS_URL", "")

TOOLS = '''
import os
from steward.tools import tool


def _record(name: str) -> None:
    # one line per execution, appended atomically, whichever process runs it
    with open(os.environ["LIMITS_CALLS_FILE"], "a", encoding="utf-8") as calls:
        calls.write(f"{name} {os.getpid()}\\n")


@tool(effect="write", keyed=True)
def reset_password(user: str) -> str:
    """Reset a user's password."""
    _record("reset_password")
    return "reset"


@tool(effect="read", cost_usd=1.0)
def paid_lookup(item: str) -> str:
    """Look an item up in a paid catalogue ($1 a call)."""
    _record("paid_lookup")
    return "found"


def all_tools():
    return [reset_password, paid_lookup]
'''

RESETTER = """
name: resetter
model: rules
tools: [reset_password]
toolsets: ["limits_tools:all_tools"]
decision_authority:
  autonomous: [reset_password]
rate_limits: {reset_password: 20/hour}
limits: {max_concurrent_runs: 100}
rules:
  intents:
    - name: reset
      match: ["reset"]
      plan: [[{tool: reset_password, args: {user: ann}}]]
      answer: done
"""

SPENDER = """
name: spender
model: rules
tools: [paid_lookup]
toolsets: ["limits_tools:all_tools"]
decision_authority:
  autonomous: [paid_lookup]
cost_controls: {max_daily_spend_usd: 10}
limits: {max_concurrent_runs: 100}
rules:
  intents:
    - name: buy
      match: ["look"]
      plan: [[{tool: paid_lookup, args: {item: tent}}]]
      answer: done
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    db: Database
    calls_file: Path
    bases: list[str]
    token: str

    def executions(self, tool: str) -> int:
        if not self.calls_file.exists():
            return 0
        lines = self.calls_file.read_text(encoding="utf-8").splitlines()
        return sum(1 for line in lines if line.split()[0] == tool)

    def run_everywhere(self, agent: str, text: str, count: int) -> list[str]:
        """`count` runs started at once, spread over every server."""
        headers = {"Authorization": f"Bearer {self.token}"}

        def start(index: int) -> str:
            base = self.bases[index % len(self.bases)]
            response = httpx.post(
                f"{base}/v1/runs",
                json={"agent": agent, "input": text},
                headers=headers,
                timeout=30,
            )
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        with ThreadPoolExecutor(max_workers=20) as pool:
            ids = list(pool.map(start, range(count)))
        self.wait_finished(agent, count)
        return ids

    def wait_finished(self, agent: str, count: int, timeout: float = 120.0) -> None:
        query = select(func.count()).where(runs.c.agent == agent, runs.c.finished_at.is_not(None))
        deadline = time.monotonic() + timeout
        while True:
            with self.db.reader.connect() as connection:
                done = connection.execute(query).scalar_one()
            if done >= count:
                return
            assert time.monotonic() < deadline, f"only {done} of {count} runs finished"
            time.sleep(0.2)

    def spent(self, agent: str) -> float:
        query = select(func.coalesce(func.sum(cost_ledger.c.cost_usd), 0.0)).where(
            cost_ledger.c.agent == agent
        )
        with self.db.reader.connect() as connection:
            return float(connection.execute(query).scalar_one())


def _serve(db: Database, tmp_path: Path, redis_url: str) -> Iterator[Deployment]:
    (tmp_path / "limits_tools.py").write_text(TOOLS, encoding="utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "resetter.yaml").write_text(RESETTER, encoding="utf-8")
    (specs / "spender.yaml").write_text(SPENDER, encoding="utf-8")
    calls_file = tmp_path / "calls.log"
    token = create_key(db, name="ops", role=Role.ADMIN, by="test")[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "LIMITS_CALLS_FILE": str(calls_file),
        "STEWARD_TELEMETRY": "off",
    }
    env.pop("STEWARD_REDIS_URL", None)
    if redis_url:
        env["STEWARD_REDIS_URL"] = redis_url
    servers: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for index in range(2):
            port = _free_port()
            command = [str(STEWARD), "serve", "--agent", str(specs), "--port", str(port)]
            command += ["--db", db.url, "--recover" if index == 0 else "--no-recover"]
            servers.append(
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            )
            bases.append(f"http://127.0.0.1:{port}")
        for server, base in zip(servers, bases, strict=True):
            _wait_up(server, base, token)
        yield Deployment(db, calls_file, bases, token)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def _wait_up(server: subprocess.Popen[bytes], base: str, token: str) -> None:
    deadline = time.monotonic() + 60
    request = urllib.request.Request(
        f"{base}/v1/agents", headers={"Authorization": f"Bearer {token}"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert server.poll() is None, server.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "steward serve did not come up in 60 s"
        time.sleep(0.2)


def _redis_or_skip() -> str:
    if REDIS_URL:
        return REDIS_URL
    if os.environ.get("CI"):
        pytest.fail("STEWARD_TEST_REDIS_URL is not set, and CI must run the Redis tests")
    pytest.skip("Redis tests skipped: set STEWARD_TEST_REDIS_URL to run them")


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Two `steward serve` processes on one database; with `redis`, a SQLite database
    whose limits are kept in Redis (STEWARD_REDIS_URL)."""
    redis_url = _redis_or_skip() if request.param == "redis" else ""
    name = "postgres_db" if request.param == "postgres" else "sqlite_db"
    db: Database = request.getfixturevalue(name)
    yield from _serve(db, tmp_path, redis_url)


def test_a_rate_limit_holds_across_two_servers(deployment: Deployment) -> None:
    deployment.run_everywhere("resetter", "please reset my password", 100)
    assert deployment.executions("reset_password") == 20


def test_a_daily_budget_holds_across_two_servers(deployment: Deployment) -> None:
    deployment.run_everywhere("spender", "look up the tent", 100)
    assert deployment.executions("paid_lookup") == 10
    assert deployment.spent("spender") == pytest.approx(10.0)
