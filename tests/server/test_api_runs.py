"""Runs and approvals through the API: a run waits for a person, a reviewer decides,
the run resumes and finishes; every change is in the run's events."""

from __future__ import annotations

import json

from .served import Served


def _pending(served: Served, run_id: str) -> dict[str, object]:
    approvals = served.as_("reviewer", "GET", "/v1/approvals").json()
    mine = [a for a in approvals if a["run_id"] == run_id]
    assert len(mine) == 1, approvals
    return mine[0]


def test_a_waiting_run_resumes_when_a_reviewer_approves(served_any: Served) -> None:
    served = served_any
    run = served.start()
    assert run["agent"] == "support-desk" and run["tags"]["started_by"] == "admin:admin-1"
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    assert approval["tool"] == "issue_refund" and approval["arguments"]["amount_usd"] == 330.0

    decided = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision",
        json={"decision": "approve", "comment": "customer is right"},
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decided_by"] == "reviewer:reviewer-1"
    done = served.wait_for(run["id"], "succeeded")
    assert "refunded $330" in done["output"]

    events = served.as_("viewer", "GET", f"/v1/runs/{run['id']}/events").json()
    steps = [
        e["type"] + ("" if e["type"] != "tool.succeeded" else ":" + e["data"]["tool"])
        for e in events
    ]
    order = ["approval.requested", "approval.decided", "approval.used",
             "tool.succeeded:issue_refund", "run.finished"]  # fmt: skip
    assert [steps.index(s) for s in order] == sorted(steps.index(s) for s in order)


def test_a_rejection_reaches_the_agent_and_the_refund_never_runs(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    response = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision",
        json={"decision": "reject", "comment": "item was returned damaged"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    done = served.wait_for(run["id"], "succeeded", "escalated")
    events = served.as_("admin", "GET", f"/v1/runs/{run['id']}/events").json()
    assert not [
        e for e in events if e["type"] == "tool.succeeded" and e["data"]["tool"] == "issue_refund"
    ]
    assert any(
        e["type"] == "gate.decided" and "approval.rejected" in json.dumps(e["data"]) for e in events
    ), done


def test_approve_with_edited_arguments_is_decided_by_policy_again(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    edited = {**approval["arguments"], "amount_usd": 900.0}  # over the $500 forbidden line
    response = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision",
        json={"decision": "approve", "arguments": edited},
    )  # fmt: skip
    assert response.status_code == 200
    served.wait_for(run["id"], "succeeded", "escalated")
    events = served.as_("admin", "GET", f"/v1/runs/{run['id']}/events").json()
    assert not [
        e for e in events if e["type"] == "tool.succeeded" and e["data"]["tool"] == "issue_refund"
    ]
    assert any("condition.refund-over-500" in json.dumps(e["data"]) for e in events)
    requested = next(e["data"] for e in events if e["type"] == "approval.requested")
    assert not [e for e in events if e["type"] == "approval.used"]  # denied: never released
    assert requested["arguments"]["amount_usd"] == 330.0


def test_an_edit_within_policy_runs_as_a_new_call_with_its_own_hash(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    edited = {**approval["arguments"], "amount_usd": 120.0}
    response = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision",
        json={"decision": "approve", "arguments": edited, "comment": "partial refund"},
    )  # fmt: skip
    assert response.status_code == 200
    done = served.wait_for(run["id"], "succeeded")
    assert "refunded $120" in done["output"]
    events = served.as_("admin", "GET", f"/v1/runs/{run['id']}/events").json()
    requested = next(e["data"] for e in events if e["type"] == "approval.requested")
    used = next(e["data"] for e in events if e["type"] == "approval.used")
    assert used["call_hash"] and used["call_hash"] != requested["call_hash"]


def test_deciding_twice_is_a_conflict_with_the_reason(served_any: Served) -> None:
    served = served_any
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    url = f"/v1/approvals/{approval['id']}/decision"
    first = served.as_("reviewer", "POST", url, json={"decision": "approve"})
    assert first.status_code == 200
    again = served.as_("reviewer", "POST", url, json={"decision": "reject", "comment": "no"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"approval {approval['id']} is already approved"


def test_listing_pages_with_a_cursor_newest_first(served_any: Served) -> None:
    served = served_any
    ids = [served.start("Is there a minimum spend for free shipping?")["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = served.as_("viewer", "GET", "/v1/runs", params=params).json()
        seen.extend(r["id"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    waiting_only = served.as_("viewer", "GET", "/v1/runs", params={"status": "waiting"}).json()
    assert waiting_only["items"] == []


def test_feedback_is_recorded_and_feeds_accuracy(served: Served) -> None:
    from steward.store.stats import agent_stats

    run = served.start("Is there a minimum spend for free shipping?")
    served.wait_for(run["id"], "succeeded")
    missing = served.as_("reviewer", "POST", f"/v1/runs/{run['id']}/feedback",
                         json={"verdict": "incorrect"})  # fmt: skip
    assert missing.status_code == 400
    assert "correction" in missing.json()["error"]["message"]
    given = served.as_(
        "reviewer", "POST", f"/v1/runs/{run['id']}/feedback",
        json={"verdict": "incorrect", "correction": "Free shipping starts at $35."},
    )  # fmt: skip
    assert given.status_code == 201
    stats = agent_stats(served.db, "support-desk")
    assert stats.judged == 1 and stats.accuracy == 0.0  # one answer, flagged incorrect
    second = served.start("Is there a minimum spend for free shipping?")
    served.wait_for(second["id"], "succeeded")
    assert agent_stats(served.db, "support-desk").accuracy == 0.5


def test_the_kill_switch_stops_new_runs_and_is_audited(served: Served) -> None:
    off = served.as_("admin", "POST", "/v1/agents/support-desk/disable",
                     json={"comment": "incident 42"})  # fmt: skip
    assert off.status_code == 200 and off.json()["enabled"] is False
    refused = served.as_("admin", "POST", "/v1/runs", json={"agent": "support-desk", "input": "hi"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "agent.disabled"
    audit = served.as_("viewer", "GET", "/v1/audit/events", params={"type": "agent."}).json()
    changed = audit["items"][-1]["data"]
    assert changed["enabled"] is False and changed["by"] == "admin:admin-1"
    assert changed["comment"] == "incident 42"
    mode = served.as_("admin", "PUT", "/v1/agents/support-desk/mode", json={"mode": "advisory"})
    assert mode.json()["mode"] == "advisory" and mode.json()["state_version"] == 2


def test_audit_verify_and_metrics(served: Served) -> None:
    run = served.start("Is there a minimum spend for free shipping?")
    served.wait_for(run["id"], "succeeded")
    report = served.as_("viewer", "POST", "/v1/audit/verify").json()
    assert report["ok"] is True and report["checked"] > 5
    versions = served.as_("viewer", "GET", "/v1/agents/support-desk/versions").json()
    assert len(versions) == 1 and "name: support-desk" in versions[0]["spec_text"]


def test_cancelling_a_waiting_run_voids_its_approval(served_any: Served) -> None:
    served = served_any
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = _pending(served, run["id"])
    cancelled = served.as_(
        "reviewer", "POST", f"/v1/runs/{run['id']}/cancel", json={"reason": "duplicate ticket"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["reason"] == "cancelled by reviewer:reviewer-1: duplicate ticket"
    late = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval['id']}/decision", json={"decision": "approve"}
    )
    assert late.status_code == 409 and "cancelled" in late.json()["error"]["message"]
    again = served.as_("admin", "POST", f"/v1/runs/{run['id']}/cancel", json={"reason": "x"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"run {run['id']} already cancelled"
