"""Server-Sent Events: a run's journal events as they commit and its text as it comes;
`Last-Event-ID` resumes without gaps; the stream ends with the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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
