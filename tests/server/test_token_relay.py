"""Streamed tokens cross processes on PostgreSQL (store/token_relay.py): a follower on one
`steward serve` replica gets the model's text chunks of a run another replica drives, in
order, once each, and together they are the answer the journal records."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.openai_server import OpenAIServer, Stream
from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.testing.served import ServedProcess, chain_verifies

KEY_ENV = "STEWARD_TEST_OPENAI_KEY"
CHUNKS = ["Order ", "10005 ", "left ", "our ", "warehouse ", "on ", "Monday."]
SETTLE = 60.0

TALKER = """
name: talker
model:
  name: openai:gpt-4o-mini
  base_url: {openai}
  api_key_env: STEWARD_TEST_OPENAI_KEY
  timeout_seconds: 30
limits: {{max_run_seconds: 60}}
"""


def talker_spec(tmp_path: Path, provider: OpenAIServer) -> Path:
    """An agent whose model (a loopback OpenAI server) streams its answer in chunks."""
    path = tmp_path / "talker.yaml"
    path.write_text(TALKER.format(openai=provider.base_url))
    return path


def script_answer(provider: OpenAIServer) -> threading.Event:
    """The provider holds its answer until the returned event is set, then streams
    CHUNKS (a pause between each), or answers them whole to a call that does not stream."""
    release = threading.Event()
    provider.hang(SETTLE, Stream(CHUNKS, pause=0.05, joined_when_asked=True), release=release)
    return release


def follow(base: str, token: str, run_id: str, records: list[dict[str, Any]]) -> None:
    """Read the run's SSE stream until run.finished, as {event, data} records."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream(
        "GET", f"{base}/v1/runs/{run_id}/stream", headers=headers, timeout=SETTLE
    ) as response:
        assert response.status_code == 200
        record: dict[str, Any] = {}
        for line in response.iter_lines():
            if not line:
                if record:
                    records.append(record)
                    if record.get("event") == "run.finished":
                        return
                record = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                record[name] = json.loads(value) if name == "data" else value


def followed_tokens(
    base: str, token: str, run_id: str, release: threading.Event
) -> list[dict[str, Any]]:
    """Follow the run on `base`; once the stream shows the run started (the follower is
    listening), let the model answer; every record up to run.finished."""
    records: list[dict[str, Any]] = []
    reader = threading.Thread(target=follow, args=(base, token, run_id, records), daemon=True)
    reader.start()
    deadline = time.monotonic() + SETTLE
    while not any(r.get("event") == "run.started" for r in list(records)):
        assert reader.is_alive() and time.monotonic() < deadline, records
        time.sleep(0.02)
    # The stream shows the run once its announcement went out; the driving process's
    # listener thread takes it within milliseconds, later on a loaded machine.
    time.sleep(0.25)
    release.set()
    reader.join(SETTLE)
    assert not reader.is_alive(), records
    return records


def assert_streamed_answer(records: list[dict[str, Any]], output: str) -> None:
    kinds = [r["event"] for r in records]
    tokens = [r["data"]["text"] for r in records if r["event"] == "token"]
    assert kinds[-1] == "run.finished", kinds
    assert "".join(tokens) == "".join(CHUNKS), tokens  # in order, none twice, none lost
    assert len(tokens) > 1, tokens  # chunks as they came, not the whole turn at the end
    assert "".join(tokens) == output
    assert kinds.index("token") < kinds.index("model.responded"), kinds


@dataclass
class Pair:
    a: ServedProcess
    b: ServedProcess
    admin: str
    provider: OpenAIServer


@pytest.fixture
def pair(postgres_db: Database, tmp_path: Path) -> Iterator[Pair]:
    with OpenAIServer() as provider:
        spec = talker_spec(tmp_path, provider)
        systems = tmp_path / "systems.db"
        a = ServedProcess(postgres_db.url, spec, systems, tmp_path / "a.log")
        b = ServedProcess(
            postgres_db.url, spec, systems, tmp_path / "b.log", args=("--no-recover",)
        )
        admin = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
        try:
            a.start(**{KEY_ENV: "sk-test"})
            b.start(**{KEY_ENV: "sk-test"})
            yield Pair(a, b, admin, provider)
        finally:
            a.kill()
            b.kill()
    assert chain_verifies(postgres_db)


@pytest.mark.slow
def test_a_follower_on_one_replica_gets_the_tokens_of_a_run_another_drives(pair: Pair) -> None:
    release = script_answer(pair.provider)
    status, body = pair.b.call(
        "POST", "/v1/runs", pair.admin, {"agent": "talker", "input": "where is 10005?"}
    )
    assert status == 202, body
    run_id = body["id"]
    records = followed_tokens(pair.a.base, pair.admin, run_id, release)
    status, run = pair.a.call("GET", f"/v1/runs/{run_id}", pair.admin)
    assert status == 200 and run["status"] == "succeeded", (run["reason_code"], run["reason"])
    assert_streamed_answer(records, run["output"])
    # the chunks crossed over the relay (B sent, A heard), and were counted
    assert relay_count(pair.b, pair.admin, "sent") >= 1
    assert relay_count(pair.a, pair.admin, "heard") >= 1
    assert relay_count(pair.a, pair.admin, "dropped") == 0


def relay_count(on: ServedProcess, token: str, outcome: str) -> float:
    response = httpx.get(
        f"{on.base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    prefix = f'steward_token_relay_chunks_total{{outcome="{outcome}"}} '
    [line] = [x for x in response.text.splitlines() if x.startswith(prefix)]
    return float(line.removeprefix(prefix))
