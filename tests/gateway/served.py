"""A real `steward gateway` process over a scratch database, with a toolset that counts
its side effects in a file (so a restarted gateway is counted too), and MCP clients.
Test modules import this after `pytest.importorskip("mcp_types")`: it needs the MCP SDK 2.x."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from steward.security.keys import Role
from steward.store.database import Database
from steward.store.keys import create_key

SRC = Path(__file__).resolve().parents[2] / "src"

TOOLSET = """
import json, os
from pathlib import Path
import steward

def tools():
    ledger = Path(os.environ["GW_LEDGER"])

    def did(what, **args):
        with ledger.open("a") as out:
            out.write(json.dumps({"tool": what, **args}) + "\\n")

    def echo(text: str) -> dict:
        return {"echo": text}

    def refund(order_id: str, amount_usd: float) -> dict:
        did("refund", order_id=order_id, amount_usd=amount_usd)
        return {"refunded": order_id, "amount_usd": amount_usd}

    def note(text: str) -> str:
        did("note", text=text)
        return "noted"

    def wipe(target: str) -> str:
        did("wipe", target=target)
        return "wiped"

    return [
        steward.external_tool("echo", echo, effect="read", description="Echo the text back."),
        steward.external_tool("refund", refund, description="Refund an order."),
        steward.external_tool("note", note, description="Write a note."),
        steward.external_tool("wipe", wipe, description="Wipe a target."),
    ]
"""

SPEC = """\
name: mcp-desk
model: external
tools: [echo, refund, note, wipe]
toolsets: ["gw_toolset:tools"]
decision_authority:
  autonomous: [echo, note]
  requires_human_review: [refund]
  forbidden: [wipe]
conditions:
  - id: big-refund
    tool: refund
    when: args.amount_usd > 500.0
    then: forbidden
    reason: Refunds over $500 are for finance.
rate_limits:
  echo: 3/hour
approvals:
  expires_after_seconds: 3600
"""

OTHER = """\
name: reader
model: external
tools: [echo]
toolsets: ["gw_toolset:tools"]
decision_authority:
  autonomous: [echo]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    """`steward gateway` over `db_url` serving the specs in `specs`."""

    folder: Path
    db_url: str
    tokens: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()
    command: tuple[str, ...] = ("gateway",)  # or ("serve", "--mcp"): mounted in the API server

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger.jsonl"

    def effects(self, tool: str) -> list[dict[str, Any]]:
        import json

        if not self.ledger.exists():
            return []
        lines = self.ledger.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["tool"] == tool]

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(SRC), str(self.folder), os.environ.get("PYTHONPATH", "")])
        return {**os.environ, "PYTHONPATH": path, "STEWARD_DB": self.db_url,
                "STEWARD_TELEMETRY": "off", "GW_LEDGER": str(self.ledger)}  # fmt: skip

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None
        args = [sys.executable, "-c", "from steward.cli.main import main; main()", *self.command,
                "--agent", str(self.folder / "specs"), "--port", str(self.port), *self.extra]  # fmt: skip
        log = (self.folder / "gateway.log").open("ab")
        self.process = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/livez", timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.folder / "gateway.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"steward gateway did not come up:\n{tail}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return (self.folder / "gateway.log").read_text(errors="replace")

    @contextlib.asynccontextmanager
    async def client(self, who: str = "desk", mode: str = "auto") -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(self.url, http_client=http)
            async with Client(transport, mode=mode, cache=None) as client:
                yield client


def make_gateway(
    folder: Path, *extra: str, command: tuple[str, ...] = ("gateway",)
) -> GatewayProcess:
    (folder / "specs").mkdir(parents=True, exist_ok=True)
    (folder / "specs" / "desk.yaml").write_text(SPEC)
    (folder / "specs" / "reader.yaml").write_text(OTHER)
    (folder / "gw_toolset.py").write_text(TOOLSET)
    db_url = f"sqlite:///{folder / 'steward.db'}"
    db = Database.open(db_url)
    try:
        tokens = {
            "desk": create_key(
                db, name="desk-client", role=Role.AGENT, agent="mcp-desk", by="test"
            )[1],
            "reader": create_key(
                db, name="reader-client", role=Role.AGENT, agent="reader", by="test"
            )[1],
            "admin": create_key(db, name="ada", role=Role.ADMIN, by="test")[1],
            "reviewer": create_key(db, name="rita", role=Role.REVIEWER, by="test")[1],
        }
    finally:
        db.close()
    return GatewayProcess(folder, db_url, tokens, extra=extra, command=command)


def served_gateway(folder: Path) -> Iterator[GatewayProcess]:
    served = make_gateway(folder)
    served.start()
    try:
        yield served
    finally:
        served.stop()
