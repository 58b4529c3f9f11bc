"""Helpers for the server tests: a served app, its keys, polling for a run's state, and a
real `steward serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key

LARGE_REFUND = (
    "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
    "Order #10114 arrived without the ultralight tent. Please refund $330 for it."
)


@dataclass
class Served:
    client: TestClient
    db: Database
    tokens: dict[str, str]  # role -> token; "agent" is the demo agent's, "other-agent" not

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def as_(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, headers=self.headers(who), **kwargs)

    def wait_for(self, run_id: str, *states: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll the run until it reaches one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.as_("admin", "GET", f"/v1/runs/{run_id}").json()
            if body.get("status") in states or time.monotonic() > deadline:
                assert body.get("status") in states, body
                return body
            time.sleep(0.02)

    def start(self, text: str = "", who: str = "admin") -> dict[str, Any]:
        response = self.as_(
            who, "POST", "/v1/runs", json={"agent": "support-desk", "input": text or LARGE_REFUND}
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body


def issue_keys(db: Database) -> dict[str, str]:
    tokens = {}
    for role in (Role.ADMIN, Role.REVIEWER, Role.VIEWER):
        tokens[role.value] = create_key(db, name=f"{role.value}-1", role=role, by="test")[1]
    tokens["agent"] = create_key(db, name="bot", role=Role.AGENT, agent="support-desk", by="test")[
        1
    ]
    tokens["other-agent"] = create_key(
        db, name="other", role=Role.AGENT, agent="another-agent", by="test"
    )[1]
    return tokens


STEWARD = Path(sys.executable).with_name("steward")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def steward_serve(
    db_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """A real `steward serve` process over `db_url` (extra CLI `args`, e.g. "--demo");
    yields its base URL once /livez answers, and stops it (SIGTERM, then SIGKILL)."""
    environment = {**os.environ, "STEWARD_DB": db_url, "STEWARD_TELEMETRY": "off", **(env or {})}
    port = free_port()
    server = subprocess.Popen(
        [str(STEWARD), "serve", "--port", str(port), *args],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, f"steward serve did not come up in {timeout} s"
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
