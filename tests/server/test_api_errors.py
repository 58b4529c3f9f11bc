"""Bad input gets a 4xx with a JSON reason: unknown ids 404, spent approvals 409, malformed
bodies 422 naming the field. Never a 500, never a traceback."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from steward.store.schema import approvals

from .served import Served


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/runs/run_nope", None),
        ("GET", "/v1/runs/run_nope/events", None),
        ("POST", "/v1/runs/run_nope/cancel", {"reason": "x"}),
        ("POST", "/v1/runs/run_nope/feedback", {"verdict": "correct"}),
        ("GET", "/v1/approvals/apr_nope", None),
        ("POST", "/v1/approvals/apr_nope/decision", {"decision": "approve"}),
        ("GET", "/v1/agents/nobody", None),
        ("POST", "/v1/agents/nobody/disable", {}),
        ("POST", "/v1/runs", {"agent": "nobody", "input": "hi"}),
        ("GET", "/v1/nothing-here", None),
    ],
)
def test_unknown_ids_are_404_with_a_reason(
    served: Served, method: str, url: str, body: dict[str, object] | None
) -> None:
    response = served.as_("admin", method, url, **({"json": body} if body is not None else {}))
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "hi"}, "body.agent"),
        ({"agent": "support-desk", "input": ""}, "body.input"),
        ({"agent": "support-desk", "input": "hi", "tags": {"a": 1}}, "body.tags.a"),
        ({"agent": "support-desk", "input": "hi", "priority": 3}, "body.priority"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    served: Served, body: dict[str, object], field: str
) -> None:
    response = served.as_("admin", "POST", "/v1/runs", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "request.invalid"
    assert field in [f["field"] for f in error["fields"]], error


def test_not_json_at_all_is_422(served: Served) -> None:
    response = served.client.post(
        "/v1/runs",
        content=b"{not json",
        headers={**served.headers("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "request.invalid"


def test_bad_query_values_are_422(served: Served) -> None:
    for params in ({"status": "done"}, {"limit": 0}, {"cursor": "%%%"}):
        response = served.as_("viewer", "GET", "/v1/runs", params=params)
        assert response.status_code == 422, (params, response.text)


def test_a_reject_without_a_comment_and_a_bad_decision_are_422(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = served.as_("reviewer", "GET", "/v1/approvals").json()[0]
    url = f"/v1/approvals/{approval['id']}/decision"
    bare = served.as_("reviewer", "POST", url, json={"decision": "reject"})
    assert bare.status_code == 422 and "comment" in bare.json()["error"]["message"]
    odd = served.as_("reviewer", "POST", url, json={"decision": "maybe"})
    assert odd.status_code == 422 and odd.json()["error"]["fields"][0]["field"] == "body.decision"


def test_deciding_an_expired_approval_is_409_and_the_run_ends_without_the_call(
    served: Served,
) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    approval = served.as_("reviewer", "GET", "/v1/approvals").json()[0]
    with served.db.writer.begin() as connection:
        connection.execute(
            update(approvals)
            .where(approvals.c.id == approval["id"])
            .values(expires_at=time.time() - 1)
        )
    url = f"/v1/approvals/{approval['id']}/decision"
    late = served.as_("reviewer", "POST", url, json={"decision": "approve"})
    assert late.status_code == 409
    assert late.json()["error"]["message"] == f"approval {approval['id']} expired before a decision"
    assert served.as_("reviewer", "GET", f"/v1/approvals/{approval['id']}").json()["status"] == (
        "expired"
    )
    done = served.wait_for(run["id"], "succeeded", "escalated")
    events = served.as_("admin", "GET", f"/v1/runs/{run['id']}/events").json()
    assert any(
        e["type"] == "gate.decided" and "approval.expired" in str(e["data"]) for e in events
    ), done
    assert not [
        e for e in events if e["type"] == "tool.started" and e["data"]["tool"] == "issue_refund"
    ]


def test_feedback_on_a_waiting_run_is_409(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    response = served.as_(
        "reviewer", "POST", f"/v1/runs/{run['id']}/feedback", json={"verdict": "correct"}
    )
    assert (
        response.status_code == 409 and "no output to judge" in response.json()["error"]["message"]
    )


def test_the_openapi_schema_documents_the_api(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    assert {"/v1/runs", "/v1/runs/{run_id}/cancel", "/v1/approvals/{approval_id}/decision",
            "/v1/agents/{name}/disable", "/v1/audit/verify", "/v1/runs/{run_id}/stream",
            "/v1/runs/{run_id}/feedback"} <= set(schema["paths"])  # fmt: skip


def test_an_oversized_body_is_413_before_it_is_read(served: Served) -> None:
    huge = {"agent": "support-desk", "input": "x" * (2 << 20)}
    response = served.as_("admin", "POST", "/v1/runs", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request.too_large"


def test_security_headers_and_the_console_csp(served: Served) -> None:
    api = served.as_("viewer", "GET", "/v1/runs")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in api.headers
    page = served.client.get("/console/sign-in")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
