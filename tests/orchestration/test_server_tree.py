"""A server that loads an orchestrator and its specialists: a review two hops down shows
in the approval queue (API JSON and console) with the chain that led there, the person
who started the root may not decide it, and another person's decision finishes the tree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delegation_tree import ROOT_SAYS, Refunds, three_levels
from fastapi.testclient import TestClient

from steward.security.keys import Role
from steward.server import create_app
from steward.store import Database, Journal
from steward.store.keys import create_key
from steward.store.runs import run_tree


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    yield f"sqlite:///{tmp_path / 'steward.db'}"


def _wait(client: TestClient, path: str, headers: dict[str, str], done: Any) -> Any:
    deadline = time.monotonic() + 15
    while not done(body := client.get(path, headers=headers).json()):
        assert time.monotonic() < deadline, body
        time.sleep(0.02)
    return body


def test_the_approval_queue_shows_the_chain_and_the_tree_finishes_after_a_decision(
    url: str,
) -> None:
    db = Database.open(url)
    starter = {"Authorization": f"Bearer {create_key(db, name='ana', role=Role.ADMIN, by='t')[1]}"}
    reviewer = {
        "Authorization": f"Bearer {create_key(db, name='rita', role=Role.REVIEWER, by='t')[1]}"
    }
    refunds = Refunds()
    journal = Journal(db)  # only to build the agents; the server has its own
    agents = three_levels(db, journal, refunds, billing_review=True).agents
    journal.close()
    with TestClient(create_app(url, list(agents.values()), sweep_seconds=3600)) as client:
        started = client.post(
            "/v1/runs", json={"agent": "triage", "input": ROOT_SAYS}, headers=starter
        )
        assert started.status_code in (200, 201, 202), started.text
        root = started.json()["id"]
        pending = _wait(client, "/v1/approvals", starter, lambda body: len(body) == 1)
        assert pending[0]["chain"] == ["triage", "orders", "billing"]
        assert pending[0]["agent"] == "billing" and pending[0]["tool"] == "refund"
        signed = client.post(
            "/console/sign-in", data={"token": reviewer["Authorization"][7:]},
            headers={"Origin": "http://testserver"}, follow_redirects=False,
        )  # fmt: skip
        assert signed.status_code == 303, signed.text
        page = client.get("/console/approvals")
        assert page.status_code == 200
        assert "Delegated:" in page.text
        assert '<span class="mono">triage</span> → <span class="mono">orders</span>' in page.text
        client.cookies.clear()
        approval = pending[0]["id"]
        # ana started the root: the specialist acts on her behalf, so she may not approve
        refused = client.post(
            f"/v1/approvals/{approval}/decision", json={"decision": "approve"}, headers=starter
        )
        assert refused.status_code == 403, refused.text
        decided = client.post(
            f"/v1/approvals/{approval}/decision", json={"decision": "approve"}, headers=reviewer
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["chain"] == ["triage", "orders", "billing"]
        body = _wait(
            client, f"/v1/runs/{root}", starter, lambda b: b["status"] not in ("waiting", "running")
        )
        assert body["status"] == "succeeded", body
        assert (body["parent_run_id"], body["root_run_id"], body["hop"]) == (None, None, 0)
        tree = run_tree(db, root)
        child = client.get(f"/v1/runs/{tree[2].id}", headers=starter).json()
        assert (child["parent_run_id"], child["root_run_id"], child["hop"]) == (
            tree[1].id, root, 2,
        )  # fmt: skip
    assert [r.status for r in run_tree(db, root)] == ["succeeded"] * 3
    assert [order for order, _ in refunds.done] == ["10114"]
    db.close()


@pytest.mark.parametrize("named", ["root", "child"])
def test_cancelling_any_run_of_a_waiting_tree_cancels_the_whole_tree(url: str, named: str) -> None:
    """A tree is driven from its root, so it is cancelled whole, whichever of its runs is
    named (as on the temporal engine): no run below stays waiting on a request nobody can
    use, and the request is cancelled, not left in the queue."""
    db = Database.open(url)
    admin = {"Authorization": f"Bearer {create_key(db, name='ana', role=Role.ADMIN, by='t')[1]}"}
    journal = Journal(db)
    agents = three_levels(db, journal, Refunds(), billing_review=True).agents
    journal.close()
    with TestClient(create_app(url, list(agents.values()), sweep_seconds=3600)) as client:
        started = client.post("/v1/runs", json={"agent": "triage", "input": ROOT_SAYS},
                              headers=admin)  # fmt: skip
        root = started.json()["id"]
        pending = _wait(client, "/v1/approvals", admin, lambda body: len(body) == 1)
        tree = run_tree(db, root)
        target = root if named == "root" else tree[-1].id
        cancelled = client.post(f"/v1/runs/{target}/cancel", json={"reason": "customer withdrew"},
                                headers=admin)  # fmt: skip
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert [r.status for r in run_tree(db, root)] == ["cancelled"] * 3
        approval = client.get(f"/v1/approvals/{pending[0]['id']}", headers=admin).json()
        assert approval["status"] == "cancelled", approval
        assert client.get("/v1/approvals", headers=admin).json() == []
