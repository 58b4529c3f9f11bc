"""SIGKILL a real `steward serve` in the middle of a run tree: `triage` (rules model)
delegates every ticket to the demo `support-desk`, whose $330 refund waits for a person.
The server dies right after the approved refund returns, before its result is recorded
(STEWARD_CRASH_AT=tool.after:2). On restart the root is recovered, enters the same child
again, the keyed refund finds its first effect, and the tree completes: exactly one
refund, the audit chain intact. SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import read_journal, run_tree
from steward.testing.served import ServedProcess, chain_verifies, crash_desk_spec, refunds_by_run

LARGE_REFUND = "Order #10114 arrived without the tent. Please refund $330 for it."  # reviewed

TRIAGE = """
name: triage
model: rules
prompt: You route tickets to the specialist who handles them.
tools: [delegate.support-desk]
orchestration:
  agents: [support-desk]
decision_authority:
  autonomous: [delegate.support-desk]
limits:
  max_run_seconds: 120
rules:
  intents:
    - name: route
      match: ['(?s).+']
      extract: {message: '(?s)^(.+)$'}
      plan:
        - [{tool: delegate.support-desk, args: {message: '{message}'}}]
      answer: Routed to the support desk.
      confidence: 0.9
"""


def _wait(server: ServedProcess, token: str, run_id: str, *states: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        status, body = server.call("GET", f"/v1/runs/{run_id}", token)
        if status == 200 and body["status"] in states:
            return
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_tree_repeats_no_side_effect_and_the_tree_completes(
    any_db: Database, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "desk.yaml").write_text(crash_desk_spec(max_concurrent_runs=4))
    (agents / "triage.yaml").write_text(TRIAGE)
    admin = create_key(any_db, name="ops", role=Role.ADMIN, by="test")[1]
    reviewer = create_key(any_db, name="ana", role=Role.REVIEWER, by="test")[1]
    server = ServedProcess(any_db.url, agents, tmp_path / "systems.db", tmp_path / "serve.log")
    server.start(STEWARD_CRASH_AT="tool.after:2")
    try:
        status, body = server.call(
            "POST", "/v1/runs", admin, {"agent": "triage", "input": LARGE_REFUND}
        )
        assert status == 202, body
        root = str(body["id"])
        _wait(server, admin, root, "waiting")  # lookup_order returned: crash point 1
        _, pending = server.call("GET", "/v1/approvals", admin)
        [approval] = pending
        assert approval["chain"] == ["triage", "support-desk"]
        with contextlib.suppress(OSError):  # the process may die before it answers
            server.call(
                "POST", f"/v1/approvals/{approval['id']}/decision", reviewer,
                {"decision": "approve", "comment": "ok"},
            )  # fmt: skip
        assert server.wait(timeout=30) == -9  # the refund returned: crash point 2
        child = run_tree(any_db, root)[1].id
        assert refunds_by_run(server.systems)[child] == 1  # the effect happened, unrecorded

        server.kill()
        server.start()
        _wait(server, admin, root, "succeeded")
    finally:
        server.kill()
    tree = run_tree(any_db, root)
    assert [(r.agent, r.status) for r in tree] == [
        ("triage", "succeeded"),
        ("support-desk", "succeeded"),
    ]
    assert refunds_by_run(server.systems)[child] == 1  # and it did not happen again
    done = [
        e.event
        for e in read_journal(any_db, child)
        if e.type == "tool.succeeded" and getattr(e.event, "tool", "") == "issue_refund"
    ]
    assert len(done) == 1 and done[0].result["duplicate"] is True  # type: ignore[attr-defined]
    assert chain_verifies(any_db)
