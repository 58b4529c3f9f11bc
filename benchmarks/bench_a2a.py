"""A steward agent served over A2A (uvicorn on loopback, the a2a-sdk's own client), in the
same run as its baselines:

(a) a governed run through A2A: `SendMessage` (blocking, JSON-RPC) until the task is
    `completed`, against the same run through the REST API (`POST /v1/runs`, then polling
    `GET /v1/runs/{id}` every 2 ms until it succeeded), and the HTTP floor (`GET /livez`).
(b) the signed agent card (built and ES256-signed per request) against the floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import uvicorn
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types import Role, SendMessageRequest, TaskState
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from _common import Measurement, Report, main, sample_async, scaled
from steward.a2a import A2AConfig
from steward.security.keys import Role as KeyRole
from steward.server import create_app, load_agents
from steward.store import Database
from steward.store.keys import create_key

DEMO_SPEC = Path(__file__).resolve().parents[1] / "src/steward/demo/support_agent.yaml"
QUESTION = "Where is my order #10114?"


def _pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


class Served:
    """uvicorn in a thread on a free loopback port, serving A2A; stopped on exit."""

    def __init__(self, url: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        app = create_app(url, load_agents([DEMO_SPEC]), a2a=A2AConfig(signing_key=_pem()))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


Probe = Callable[[int], Awaitable[None]]


@contextlib.asynccontextmanager
async def served_a2a(tmp: str) -> AsyncIterator[dict[str, Probe]]:
    """The demo agent served over A2A in `tmp`, and one probe per operation measured here
    (bench_multiagent.py reuses `http_floor` and `a2a_run`)."""
    os.environ["STEWARD_DEMO_SYSTEMS"] = str(Path(tmp) / "systems.db")
    os.environ["STEWARD_TELEMETRY"] = "off"
    url = f"sqlite:///{Path(tmp) / 'b.db'}"
    db = Database.open(url)
    token = create_key(db, name="a", role=KeyRole.ADMIN, by="b")[1]
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with Served(url) as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                a2a = await create_client(
                    f"{base}/a2a/support-desk",
                    client_config=ClientConfig(streaming=False, httpx_client=http),
                )

                async def over_a2a(_i: int) -> None:
                    message = new_text_message(QUESTION, role=Role.ROLE_USER)
                    async for response in a2a.send_message(SendMessageRequest(message=message)):
                        state = response.task.status.state
                        assert state == TaskState.TASK_STATE_COMPLETED, response
                        return

                async def over_rest(_i: int) -> None:
                    body = {"agent": "support-desk", "input": QUESTION}
                    run_id = (await http.post("/v1/runs", json=body)).json()["id"]
                    status = ""
                    while status != "succeeded":  # polling is this baseline
                        status = (await http.get(f"/v1/runs/{run_id}")).json()["status"]
                        if status != "succeeded":
                            await asyncio.sleep(0.002)

                async def floor(_i: int) -> None:
                    assert (await http.get("/livez")).status_code == 200

                async def card(_i: int) -> None:
                    got = await http.get("/a2a/support-desk/.well-known/agent-card.json")
                    assert got.status_code == 200 and got.json()["signatures"]

                yield {"http_floor": floor, "rest_run": over_rest, "a2a_run": over_a2a,
                       "card": card}  # fmt: skip
    finally:
        db.close()


PROBES = (
    ("http_floor", "GET /livez (HTTP round trip floor)", "request"),
    ("rest_run", "POST /v1/runs + poll until succeeded", "run"),
    ("a2a_run", "A2A SendMessage (blocking) until completed", "run"),
    ("card", "GET signed agent card (ES256 per request)", "request"),
)


async def collect(quick: bool) -> Report:
    n = scaled(quick, 60, 10)
    report = Report(
        "a2a",
        "A steward agent over A2A: a governed run and the signed card, against REST and HTTP",
        quick,
        params={"agent": "support-desk (rules model)", "database": "SQLite (WAL)"},
    )
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        async with served_a2a(tmp) as probes:
            for key, label, unit in PROBES:
                samples = await sample_async(probes[key], n, 3)
                report.add(Measurement(key, label, samples, unit=unit))
    by_key = {m.key: m.figures()["p50_us"] for m in report.measurements}
    a2a_extra = by_key["a2a_run"] - by_key["rest_run"]
    over_floor = by_key["card"] - by_key["http_floor"]
    report.figure("a2a_over_rest", "A2A run p50 - REST run p50", a2a_extra, "µs")
    report.figure("card_over_floor", "card p50 - HTTP floor p50", over_floor, "µs")
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
