"""The server, over real HTTP (uvicorn on loopback, httpx as the client):

(a) approve-and-resume: a run waits for a person; from the POST of the approval to the
    run's `run.finished` arriving on its event stream (the decision commits, the run
    resumes from its journal, the refund executes, the model answers). Also the time to
    the decision's HTTP response alone.
(b) run listing with 100k stored runs: first page, filtered pages and a deep cursor page,
    through the API, against the same query made straight on the store (the baseline).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert

from _common import Measurement, Report, main, sample_async, sample_sync, scaled
from steward.security.keys import Role
from steward.server import create_app, load_agents
from steward.server.api._common import encode_cursor
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import list_runs
from steward.store.schema import runs

DEMO_SPEC = Path(__file__).resolve().parents[1] / "src/steward/demo/support_agent.yaml"
REFUND = (
    "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
    "Order #10114 arrived without the ultralight tent. Please refund $330 for it."
)
STORED_RUNS = 100_000
STATUSES = ("succeeded",) * 14 + ("escalated", "escalated", "waiting", "failed", "cancelled")


class Served:
    """uvicorn in a thread on a free loopback port; stopped on exit."""

    def __init__(self, url: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        app = create_app(url, load_agents([DEMO_SPEC]))
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


async def _last_event_id(client: httpx.AsyncClient, run_id: str) -> int:
    events = (await client.get(f"/v1/runs/{run_id}/events")).json()
    return int(events[-1]["id"])


async def _wait_status(client: httpx.AsyncClient, run_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while (await client.get(f"/v1/runs/{run_id}")).json()["status"] != status:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} never reached {status}")
        await asyncio.sleep(0.005)


async def approve_and_resume(
    client: httpx.AsyncClient, reviewer: dict[str, str], n: int
) -> tuple[list[int], list[int]]:
    """Start n waiting runs, then approve each; returns (decision ack ns, to finished ns)."""
    waiting = []
    for _ in range(n):
        started = await client.post("/v1/runs", json={"agent": "support-desk", "input": REFUND})
        waiting.append(started.json()["id"])
    for run_id in waiting:
        await _wait_status(client, run_id, "waiting")
    acks, finishes = [], []
    for run_id in waiting:
        approval = next(
            a for a in (await client.get("/v1/approvals")).json() if a["run_id"] == run_id
        )
        headers = {**reviewer, "Last-Event-ID": str(await _last_event_id(client, run_id))}
        async with client.stream("GET", f"/v1/runs/{run_id}/stream", headers=headers) as stream:
            lines = stream.aiter_lines()
            t0 = time.perf_counter_ns()
            decided = await client.post(
                f"/v1/approvals/{approval['id']}/decision",
                json={"decision": "approve"},
                headers=reviewer,
            )
            t1 = time.perf_counter_ns()
            assert decided.status_code == 200, decided.text
            async for line in lines:
                if line.startswith("event: run.finished"):
                    break
            t2 = time.perf_counter_ns()
        acks.append(t1 - t0)
        finishes.append(t2 - t0)
    return acks, finishes


def fill_runs(db: Database, count: int) -> None:
    """`count` finished runs over 30 days, 20 agents, mixed statuses (bulk insert)."""
    rng = random.Random(7)
    now = time.time()
    chunk = 10_000
    for base in range(0, count, chunk):
        rows: list[dict[str, Any]] = []
        for i in range(base, min(count, base + chunk)):
            created = now - rng.uniform(0, 30 * 86400)
            rows.append({
                "id": f"run_bench{i:012d}", "agent": f"agent-{i % 20:02d}",
                "agent_version": "v1", "status": rng.choice(STATUSES),
                "input": "Where is my order?", "output": "It shipped.", "confidence": 0.9,
                "reason_code": "", "reason": "", "steps": 2, "tags": "{}",
                "created_at": created, "updated_at": created + 1, "finished_at": created + 1,
            })  # fmt: skip
        with db.writer.begin() as connection:
            connection.execute(insert(runs), rows)


async def collect(quick: bool) -> Report:
    n_resume = scaled(quick, 60, 10)
    n_list = scaled(quick, 300, 40)
    stored = scaled(quick, STORED_RUNS, 20_000)
    report = Report(
        "server",
        "The server over HTTP: approve-and-resume, and run listing at scale",
        quick,
        params={"stored_runs": stored, "page_size": 50, "database": "SQLite (WAL)"},
    )
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as tmp:
        os.environ["STEWARD_DEMO_SYSTEMS"] = str(Path(tmp) / "systems.db")
        os.environ["STEWARD_TELEMETRY"] = "off"
        url = f"sqlite:///{Path(tmp) / 'b.db'}"
        db = Database.open(url)
        admin = {"Authorization": f"Bearer {create_key(db, name='a', role=Role.ADMIN, by='b')[1]}"}
        reviewer = {
            "Authorization": f"Bearer {create_key(db, name='r', role=Role.REVIEWER, by='b')[1]}"
        }
        with Served(url) as base:
            async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as client:
                await approve_and_resume(client, reviewer, 3)  # warm-up
                acks, finishes = await approve_and_resume(client, reviewer, n_resume)
                report.add(Measurement("decision_ack", "POST decision → 200 (decision durable)",
                                       acks, unit="decision"))  # fmt: skip
                report.add(Measurement("approve_resume", "POST decision → run.finished on SSE",
                                       finishes, unit="run",
                                       note="resume, refund, final answer"))  # fmt: skip

                async def floor(_i: int) -> None:
                    assert (await client.get("/livez")).status_code == 200

                report.add(Measurement("http_floor", "GET /livez (HTTP round trip floor)",
                                       await sample_async(floor, n_list, 10),
                                       unit="request"))  # fmt: skip
                fill_runs(db, stored)
                deep = list_runs(db, limit=50 * 200)[-1]
                cursor = encode_cursor(deep.created_at, deep.id)  # page 201 of 50
                queries: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
                    ("first", "first page", {"limit": 50}, {"limit": 51}),
                    ("status", "status=escalated", {"limit": 50, "status": "escalated"},
                     {"limit": 51, "status": "escalated"}),
                    ("agent", "agent=agent-07", {"limit": 50, "agent": "agent-07"},
                     {"limit": 51, "agent": "agent-07"}),
                    ("cursor", "page 201 by cursor", {"limit": 50, "cursor": cursor},
                     {"limit": 51, "before": deep.created_at, "before_id": deep.id}),
                ]  # fmt: skip
                for key, label, params, direct in queries:

                    async def over_http(_i: int, params: dict[str, Any] = params) -> None:
                        response = await client.get("/v1/runs", params=params)
                        assert response.status_code == 200 and response.json()["items"]

                    report.add(Measurement(f"list_{key}_store", f"store list_runs, {label}",
                                           sample_sync(lambda _i, d=direct: list_runs(db, **d),
                                                       n_list, 10), unit="query"))  # fmt: skip
                    report.add(Measurement(f"list_{key}_api", f"GET /v1/runs, {label}",
                                           await sample_async(over_http, n_list, 10),
                                           unit="request"))  # fmt: skip
        db.close()
    by_key = {m.key: m for m in report.measurements}
    floor_p50 = by_key["http_floor"].figures()["p50_us"]
    for key in ("first", "status", "agent", "cursor"):
        api, store = by_key[f"list_{key}_api"], by_key[f"list_{key}_store"]
        report.figure(f"list_{key}_ratio", f"API / store p95, {key}",
                      api.figures()["p95_us"] / store.figures()["p95_us"], "x")  # fmt: skip
        report.figure(f"list_{key}_over_floor", f"API p50 - store p50 - HTTP floor p50, {key}",
                      api.p50_us - store.p50_us - floor_p50, "µs")  # fmt: skip
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
