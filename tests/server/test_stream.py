"""Server-Sent Events: a run's journal events as they commit and its text as it comes;
`Last-Event-ID` resumes without gaps; the stream ends with the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .served import LARGE_REFUND, Served


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an event stream into {id, event, data} records."""
    record: dict[str, Any] = {}
    for line in lines:
        if not line:
            if record:
                yield record
            record = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            record[name] = json.loads(value) if name == "data" else value


def test_a_finished_run_streams_its_whole_journal_and_ends(served: Served) -> None:
    run = served.start("Is there a minimum spend for free shipping?")
    served.wait_for(run["id"], "succeeded")
    url = f"/v1/runs/{run['id']}/stream"
    with served.client.stream("GET", url, headers=served.headers("viewer")) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        records = list(_events(response.iter_lines()))
    assert records[0]["event"] == "run.started" and records[-1]["event"] == "run.finished"
    journal = served.as_("viewer", "GET", f"/v1/runs/{run['id']}/events").json()
    assert [int(r["id"]) for r in records] == [e["id"] for e in journal]

    resume_from = records[2]["id"]
    headers = {**served.headers("viewer"), "Last-Event-ID": resume_from}
    with served.client.stream("GET", url, headers=headers) as response:
        again = list(_events(response.iter_lines()))
    assert [r["id"] for r in again] == [r["id"] for r in records[3:]]


def test_a_live_run_streams_decisions_and_tokens_as_they_happen(served: Served) -> None:
    run = served.start(LARGE_REFUND)
    url = f"/v1/runs/{run['id']}/stream"
    seen: list[dict[str, Any]] = []
    with served.client.stream("GET", url, headers=served.headers("reviewer")) as response:
        stream = _events(response.iter_lines())
        for record in stream:
            seen.append(record)
            if record["event"] == "run.waiting":
                break
        approval = served.as_("reviewer", "GET", "/v1/approvals").json()[0]
        served.as_(
            "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision",
            json={"decision": "approve"},
        )  # fmt: skip
        seen.extend(stream)
    kinds = [r["event"] for r in seen]
    assert kinds[-1] == "run.finished" and seen[-1]["data"]["data"]["status"] == "succeeded"
    after_wait = kinds[kinds.index("run.waiting") :]
    assert "approval.decided" in after_wait and "token" in after_wait
    text = "".join(r["data"]["text"] for r in seen if r["event"] == "token")
    assert "refunded $330" in text


def test_tokens_from_a_streaming_provider_arrive_before_the_turn_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent on the OpenAI protocol (loopback server streaming SSE chunks): the
    server relays each chunk as an `event: token` while the model is still answering,
    before the turn's `model.responded` is in the journal."""
    from fastapi.testclient import TestClient

    from providers.openai_server import OpenAIServer
    from steward.runtime import build_agent
    from steward.security.keys import Role
    from steward.server import create_app
    from steward.spec import load_spec_text
    from steward.store import Database
    from steward.store.keys import create_key

    monkeypatch.setenv("STEWARD_TEST_OPENAI_KEY", "sk-test")
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    token = create_key(db, name="ops", role=Role.ADMIN, by="test")[1]
    headers = {"Authorization": f"Bearer {token}"}
    with OpenAIServer() as provider:
        provider.stream(["Order ", "10005 ", "has ", "shipped."], pause=0.15)
        spec = STREAMING_SPEC.format(openai=provider.base_url)
        agent = build_agent(load_spec_text(spec, "talker.yaml"), [])
        with TestClient(create_app(url, [agent])) as client:
            run_id = client.post(
                "/v1/runs", json={"agent": "talker", "input": "where is 10005?"}, headers=headers
            ).json()["id"]
            with client.stream("GET", f"/v1/runs/{run_id}/stream", headers=headers) as response:
                records = list(_events(response.iter_lines()))
    db.close()
    kinds = [r["event"] for r in records]
    tokens = [r["data"]["text"] for r in records if r["event"] == "token"]
    assert "".join(tokens) == "Order 10005 has shipped." and len(tokens) >= 3
    assert kinds.index("token") < kinds.index("model.responded") < kinds.index("run.finished")


STREAMING_SPEC = """
name: talker
model:
  name: openai:gpt-4o-mini
  base_url: {openai}
  api_key_env: STEWARD_TEST_OPENAI_KEY
  timeout_seconds: 10
limits: {{max_run_seconds: 20}}
"""
