"""Console forms: deciding approvals (and what each role may do), cancelling a run, the
kill switch and the autonomy mode, and the same-origin check on every POST."""

from __future__ import annotations

from steward.store.approvals import get_approval

from .served import Served
from .test_console import QUICK, get, post, sign_in, waiting_run


def test_a_viewer_sees_the_queue_read_only(served: Served) -> None:
    run_id, approval_id = waiting_run(served)
    sign_in(served, "viewer")
    queue = get(served, "/console/approvals")
    assert "issue_refund" in queue and run_id in queue and "requires_human_review" in queue
    assert 'title="1 pending">1</span>' in queue
    assert "/decide" not in queue and ">Approve<" not in queue and ">Reject<" not in queue
    assert "read-only" in queue
    refused = post(served, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert refused.status_code == 403 and "You don&#39;t have access" in refused.text
    assert "may not approvals.decide" in refused.text
    assert get_approval(served.db, approval_id).status == "pending"


def test_a_reviewer_approves_from_the_queue(served: Served) -> None:
    run_id, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    queue = get(served, "/console/approvals")
    assert f'action="/console/approvals/{approval_id}/decide"' in queue
    assert ">Approve</button>" in queue and ">Reject</button>" in queue
    assert "Edit arguments, then approve" in queue and 'data-expires="' in queue

    done = post(served, f"/console/approvals/{approval_id}/decide",
                {"decision": "approve", "comment": "customer is right"})  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/console/approvals"
    assert served.wait_for(run_id, "succeeded")["output"].startswith("I've refunded $330")
    after = get(served, "/console/approvals")
    assert f"Approved issue_refund for run {run_id}." in after
    assert "Nothing is waiting for a decision" in after


def test_deciding_twice_is_a_readable_flash_not_an_error_page(served: Served) -> None:
    _, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    post(served, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    again = post(served, f"/console/approvals/{approval_id}/decide",
                 {"decision": "reject", "comment": "too late"})  # fmt: skip
    assert again.status_code == 303
    page = get(served, "/console/approvals")
    assert f"Not decided: approval {approval_id} is already approved." in page
    assert "flash-error" in page
    assert "Not decided" not in get(served, "/console/approvals")  # shown once


def test_a_rejection_needs_a_comment(served: Served) -> None:
    run_id, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    refused = post(served, f"/console/approvals/{approval_id}/decide", {"decision": "reject"})
    assert refused.status_code == 422 and "A rejection needs a comment" in refused.text
    assert get_approval(served.db, approval_id).status == "pending"
    rejected = post(served, f"/console/approvals/{approval_id}/decide",
                    {"decision": "reject", "comment": "item came back damaged"})  # fmt: skip
    assert rejected.status_code == 303
    assert get_approval(served.db, approval_id).status == "rejected"
    served.wait_for(run_id, "succeeded", "escalated")


def test_edited_arguments_must_be_json_and_are_decided_again(served: Served) -> None:
    run_id, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    url = f"/console/approvals/{approval_id}/decide"
    bad = post(served, url, {"decision": "edit", "arguments": '{"amount_usd": 20,'})
    assert bad.status_code == 422
    assert (
        "The edited arguments are not valid JSON" in bad.text and "Nothing was decided" in bad.text
    )
    assert "{&#34;amount_usd&#34;: 20," in bad.text  # the draft is kept for fixing
    not_object = post(served, url, {"decision": "edit", "arguments": "[1, 2]"})
    assert "must be a JSON object" in not_object.text
    assert get_approval(served.db, approval_id).status == "pending"

    edited = '{"order_id": "10114", "amount_usd": 120.0, "reason": "partial refund"}'
    done = post(served, url, {"decision": "edit", "arguments": edited, "comment": "partial"})
    assert done.status_code == 303
    served.wait_for(run_id, "succeeded")
    assert "Approved with edits issue_refund" in get(served, "/console/approvals")
    timeline = get(served, f"/console/runs/{run_id}")
    assert "edited arguments" in timeline and "120.0" in timeline


def test_posts_from_elsewhere_are_refused(served: Served) -> None:
    _, approval_id = waiting_run(served)
    sign_in(served, "admin")
    url = f"/console/approvals/{approval_id}/decide"
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"},
                    {"Origin": "null"}, {}):  # fmt: skip
        response = served.client.post(url, data={"decision": "approve"}, headers=headers)
        assert response.status_code == 403, headers
        assert "was not sent from the console" in response.text
    assert get_approval(served.db, approval_id).status == "pending"
    for path in ("/console/sign-out", "/console/agents/support-desk/switch"):
        assert served.client.post(path, data={"enabled": "off"}).status_code == 403
    by_referer = served.client.post(
        url, data={"decision": "approve"}, headers={"Referer": "http://testserver/console/approvals"},
        follow_redirects=False,
    )  # fmt: skip
    assert by_referer.status_code == 303
    assert get_approval(served.db, approval_id).status == "approved"


def test_cancel_from_the_run_page(served: Served) -> None:
    run_id, _ = waiting_run(served)
    sign_in(served, "viewer")
    assert "Cancel run" not in get(served, f"/console/runs/{run_id}")
    assert post(served, f"/console/runs/{run_id}/cancel", {"reason": "x"}).status_code == 403

    sign_in(served, "reviewer")
    assert "Cancel run" in get(served, f"/console/runs/{run_id}")
    missing = post(served, f"/console/runs/{run_id}/cancel", {"reason": " "})
    assert missing.status_code == 303
    assert "Say why you cancel" in get(served, f"/console/runs/{run_id}")
    done = post(served, f"/console/runs/{run_id}/cancel", {"reason": "customer withdrew"})
    assert done.status_code == 303 and done.headers["location"] == f"/console/runs/{run_id}"
    page = get(served, f"/console/runs/{run_id}")
    assert served.wait_for(run_id, "cancelled")["reason"] == (
        "cancelled by reviewer:reviewer-1: customer withdrew"
    )
    assert "Run cancelled." in page and "Outcome: cancelled" in page
    approvals = served.as_("admin", "GET", "/v1/approvals", params={"status": "all"}).json()
    assert [a["status"] for a in approvals if a["run_id"] == run_id] == ["cancelled"]


def test_cancelling_a_finished_run_is_a_flash(served: Served) -> None:
    run_id = str(served.start(QUICK)["id"])
    served.wait_for(run_id, "succeeded")
    sign_in(served, "reviewer")
    assert "Cancel run" not in get(served, f"/console/runs/{run_id}")
    again = post(served, f"/console/runs/{run_id}/cancel", {"reason": "too late"})
    assert again.status_code == 303
    assert f"Not cancelled: run {run_id} already succeeded." in get(
        served, f"/console/runs/{run_id}"
    )
    assert post(served, "/console/runs/run_nope/cancel", {"reason": "x"}).status_code == 404


def test_agents_kill_switch_and_mode_for_admins_only(served: Served) -> None:
    served.wait_for(served.start(QUICK)["id"], "succeeded")
    sign_in(served, "reviewer")
    page = get(served, "/console/agents")
    assert (
        "support-desk" in page and '<span class="pill pill-green pill-big">enabled</span>' in page
    )
    assert "Show YAML" in page and "name: support-desk" in page  # the stored version
    assert "Disable agent" not in page and "only admins change agents" in page
    refused = post(
        served, "/console/agents/support-desk/switch", {"enabled": "off", "comment": "x"}
    )
    assert refused.status_code == 403

    sign_in(served, "admin")
    assert "Disable agent" in get(served, "/console/agents")
    nameless = post(served, "/console/agents/support-desk/switch", {"enabled": "off"})
    assert nameless.status_code == 303 and "Say why you disable" in get(served, "/console/agents")
    off = post(served, "/console/agents/support-desk/switch",
               {"enabled": "off", "comment": "incident 42"})  # fmt: skip
    assert off.status_code == 303
    page = get(served, "/console/agents")
    assert '<span class="pill pill-red pill-big">disabled</span>' in page
    assert "incident 42" in page and "admin:admin-1" in page and "Enable agent" in page
    started = served.as_("admin", "POST", "/v1/runs", json={"agent": "support-desk", "input": "hi"})
    assert started.status_code == 409

    post(served, "/console/agents/support-desk/mode", {"mode": "advisory", "comment": "audit"})
    page = get(served, "/console/agents")
    assert "support-desk is now advisory" in page
    assert '<span class="pill pill-blue pill-big">advisory</span>' in page
    post(served, "/console/agents/support-desk/switch", {"enabled": "on"})
    assert '<span class="pill pill-green pill-big">enabled</span>' in get(served, "/console/agents")
    assert post(served, "/console/agents/nobody/mode", {"mode": "advisory"}).status_code == 404
    bad = post(served, "/console/agents/support-desk/mode", {"mode": "reckless"})
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
