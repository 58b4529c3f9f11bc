"""`steward serve --engine temporal` on PostgreSQL: the server drives nothing itself, a
`steward worker` process drives the run, and a follower of the run's stream on the server
still gets the model's text chunks as they stream (store/token_relay.py), in order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from providers.openai_server import OpenAIServer
from server.test_token_relay import (
    KEY_ENV,
    assert_streamed_answer,
    followed_tokens,
    script_answer,
    talker_spec,
)
from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.testing.served import ServedProcess, WorkerProcess, chain_verifies

pytestmark = pytest.mark.slow


@dataclass
class Deployment:
    server: ServedProcess
    worker: WorkerProcess
    admin: str
    provider: OpenAIServer


@pytest.fixture
def deployment(
    temporal_address: str, postgres_db: Database, tmp_path: Path
) -> Iterator[Deployment]:
    queue = f"tokens-{uuid.uuid4().hex[:10]}"
    target = ("--temporal", temporal_address, "--task-queue", queue)
    with OpenAIServer() as provider:
        spec = talker_spec(tmp_path, provider)
        systems = tmp_path / "systems.db"
        server = ServedProcess(
            postgres_db.url, spec, systems, tmp_path / "server.log",
            args=("--engine", "temporal", *target),
        )  # fmt: skip
        worker = WorkerProcess(postgres_db.url, spec, systems, tmp_path / "worker.log", args=target)
        admin = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
        try:
            server.start(**{KEY_ENV: "sk-test"})
            worker.start(**{KEY_ENV: "sk-test"})
            yield Deployment(server, worker, admin, provider)
        finally:
            worker.stop()
            server.kill()
    assert chain_verifies(postgres_db)


def test_a_follower_on_the_server_gets_the_tokens_of_a_run_a_worker_drives(
    deployment: Deployment,
) -> None:
    release = script_answer(deployment.provider)
    status, body = deployment.server.call(
        "POST", "/v1/runs", deployment.admin, {"agent": "talker", "input": "where is 10005?"}
    )
    assert status == 202, body
    run_id = body["id"]
    records = followed_tokens(deployment.server.base, deployment.admin, run_id, release)
    status, run = deployment.server.call("GET", f"/v1/runs/{run_id}", deployment.admin)
    assert status == 200 and run["status"] == "succeeded", (run["reason_code"], run["reason"])
    assert_streamed_answer(records, run["output"])
