"""While the store is unusable the API says so (503, Retry-After, store.unavailable), the
server heals by itself when the fault ends, and no run it acknowledged is lost.

The fault tests drive a real `steward serve` process under a steady stream of runs: a
SQLite lock held by another connection, PostgreSQL terminating the server's connections
(and a chain-head lock held meanwhile). The deleted-file test uses the app in process."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from conftest import NamedPostgres
from steward.core.errors import StoreError
from steward.security.keys import Role
from steward.server.errors import install_error_handlers
from steward.store import Database
from steward.store.chain import verify_chain
from steward.store.keys import create_key
from steward.store.runs import get_run

from .served import Served, steward_serve

QUESTION = "Is there a minimum spend for free shipping?"  # the demo agent answers it alone
FINISHED = {"succeeded", "failed", "escalated", "cancelled"}


def test_livez_readyz_and_healthz_when_all_is_well(served_any: Served) -> None:
    client = served_any.client
    assert client.get("/livez").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert client.get("/healthz").json() == {"status": "ready"}  # /healthz means ready


def test_a_deleted_database_file_is_not_ready_and_takes_no_runs(
    served: Served, tmp_path: Path
) -> None:
    path = tmp_path / "steward.db"
    for leftover in (path, path.with_name("steward.db-wal"), path.with_name("steward.db-shm")):
        leftover.unlink(missing_ok=True)
    ready = served.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["code"] == "store.unavailable"
    assert "deleted" in ready.json()["error"]["message"]
    assert int(ready.headers["retry-after"]) >= 1
    refused = served.as_("admin", "POST", "/v1/runs", json={"agent": "support-desk", "input": "hi"})
    assert refused.status_code == 503, refused.text  # never a 202 into a deleted file
    assert refused.json()["error"]["code"] == "store.unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert served.client.get("/livez").status_code == 200  # alive, just not ready
    assert not path.exists()


def test_store_faults_are_503_and_bugs_are_500_never_400() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/locked")
    def locked() -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))

    @app.get("/missing-table")
    def missing_table() -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: runs"))

    @app.get("/store-error")
    def store_error() -> None:
        raise StoreError("run r1 was started by another version")

    client = TestClient(app, raise_server_exceptions=False)
    locked_answer = client.get("/locked")
    assert locked_answer.status_code == 503
    assert locked_answer.json()["error"]["code"] == "store.unavailable"
    assert "database is locked" in locked_answer.json()["error"]["message"]
    assert int(locked_answer.headers["retry-after"]) >= 1
    assert client.get("/missing-table").status_code == 500
    assert client.get("/store-error").status_code == 500


# -- a real server under load through a fault ----------------------------------------------


@dataclass
class Load:
    """`clients` threads each post a run every `pause` seconds until stopped; every
    answer is kept with the time it came."""

    base: str
    token: str
    clients: int = 4
    pause: float = 0.05
    answers: list[tuple[float, int, dict[str, Any], str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            self._threads.append(threading.Thread(target=self._post, daemon=True))
            self._threads[-1].start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _post(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                answer = client.post("/v1/runs", json={"agent": "support-desk", "input": QUESTION})
                retry_after = answer.headers.get("retry-after")
                self.answers.append(
                    (time.monotonic(), answer.status_code, answer.json(), retry_after)
                )
                time.sleep(self.pause)

    def accepted_after(self, moment: float, timeout: float = 30.0) -> None:
        """Wait (bounded) until a run posted is acknowledged after `moment`."""
        deadline = time.monotonic() + timeout
        while not any(at > moment and status == 202 for at, status, _, _ in self.answers):
            assert time.monotonic() < deadline, f"no run acknowledged in {timeout} s"
            time.sleep(0.05)

    def accepted(self) -> list[str]:
        return [body["id"] for _, status, body, _ in self.answers if status == 202]


def _finish_all(base: str, token: str, run_ids: list[str], timeout: float = 90.0) -> None:
    """Every acknowledged run reaches an end, as the API reports it."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for run_id in run_ids:
            while (status := client.get(f"/v1/runs/{run_id}").json().get("status")) not in FINISHED:
                assert time.monotonic() < deadline, f"run {run_id} still {status}"
                time.sleep(0.05)


def _check_through_the_fault(
    load: Load, fault: tuple[float, float], readiness: list[int], db: Database
) -> None:
    """The promises: 503 + Retry-After during the fault (never 4xx or 500), 202 again
    after it without a restart, and every acknowledged run in the store, succeeded."""
    statuses = {status for _, status, _, _ in load.answers}
    assert statuses <= {202, 503}, [a for a in load.answers if a[1] not in {202, 503}][:3]
    refused = [a for a in load.answers if a[1] == 503]
    assert refused, "the fault was never reported"
    for _, _, body, retry_after in refused:
        assert body["error"]["code"] == "store.unavailable", body
        assert retry_after is not None and int(retry_after) >= 1
    assert 503 in readiness, readiness
    began, ended = fault
    assert any(at > ended and status == 202 for at, status, _, _ in load.answers), (
        "the server did not take runs again after the fault"
    )
    assert any(at < began and status == 202 for at, status, _, _ in load.answers)
    accepted = load.accepted()
    _finish_all(load.base, load.token, accepted)
    rows = [get_run(db, run_id) for run_id in accepted]  # none lost
    not_succeeded = [(row.id, row.status, row.reason) for row in rows if row.status != "succeeded"]
    assert not not_succeeded, not_succeeded
    with db.reader.connect() as connection:
        assert verify_chain(connection).ok


def _watch_readiness(base: str, until: threading.Event, seen: list[int]) -> threading.Thread:
    def watch() -> None:
        while not until.is_set():
            seen.append(httpx.get(f"{base}/readyz", timeout=30).status_code)
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    return {"STEWARD_DEMO_SYSTEMS": str(tmp_path / "systems.db")}


def _admin_token(db: Database) -> str:
    return create_key(db, name="ops", role=Role.ADMIN, by="test")[1]


@pytest.mark.slow
def test_a_sqlite_lock_held_elsewhere_is_503_then_heals_losing_nothing(
    sqlite_db: Database, tmp_path: Path, demo_env: dict[str, str]
) -> None:
    token = _admin_token(sqlite_db)
    with steward_serve(sqlite_db.url, "--demo", env=demo_env) as base:
        _finish_all(base, token, [_start(base, token)])  # warm: agent version saved
        done, readiness = threading.Event(), []
        with Load(base, token) as load:
            load.accepted_after(time.monotonic())
            other = sqlite3.connect(tmp_path / "steward.db", isolation_level=None, timeout=10)
            began = time.monotonic()
            other.execute("BEGIN EXCLUSIVE")  # an operator's shell, a backup: the lock
            watcher = _watch_readiness(base, done, readiness)
            time.sleep(4.0)
            other.execute("COMMIT")
            other.close()
            ended = time.monotonic()
            load.accepted_after(ended)  # healed by itself
            time.sleep(1.0)
            done.set()
            watcher.join(timeout=60)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        _check_through_the_fault(load, (began, ended), readiness, sqlite_db)


@pytest.mark.slow
def test_postgres_terminating_the_servers_connections_is_healed_losing_nothing(
    postgres_named: NamedPostgres, demo_env: dict[str, str]
) -> None:
    db = postgres_named.db
    token = _admin_token(db)
    with steward_serve(db.url, "--demo", env=demo_env) as base:
        _finish_all(base, token, [_start(base, token)])
        done, readiness = threading.Event(), []
        with Load(base, token) as load, _postgres_admin(db) as admin:
            load.accepted_after(time.monotonic())
            assert postgres_named.terminate_backends() >= 1
            began = time.monotonic()
            # While the journal reconnects, someone else holds the chain head for a while:
            # a fault that lasts, so it must be reported, not only survived.
            locker = admin.connect()
            locker.execute(text("SELECT last_id FROM chain_head WHERE id = 1 FOR UPDATE"))
            watcher = _watch_readiness(base, done, readiness)
            time.sleep(1.5)
            assert postgres_named.terminate_backends() >= 1
            time.sleep(2.5)
            locker.rollback()
            locker.close()
            ended = time.monotonic()
            time.sleep(0.5)
            assert postgres_named.terminate_backends() >= 1  # and once more, after
            load.accepted_after(time.monotonic())
            time.sleep(1.0)
            done.set()
            watcher.join(timeout=60)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        _check_through_the_fault(load, (began, ended), readiness, db)


def _start(base: str, token: str) -> str:
    answer = httpx.post(
        f"{base}/v1/runs", json={"agent": "support-desk", "input": QUESTION},
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["id"]
    return run_id


@contextmanager
def _postgres_admin(db: Database) -> Iterator[Engine]:
    """An engine on the test's schema that is not the server's (another application)."""
    engine = create_engine(db.url.split("&application_name=")[0])
    try:
        yield engine
    finally:
        engine.dispose()
