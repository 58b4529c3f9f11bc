"""Times in the API are RFC 3339 strings in UTC (`Z`, milliseconds), in every body
that carries one: runs, run pages, approvals, events, audit pages, agent versions; the
OpenAPI schema says so; time queries take RFC 3339 (with a zone) or Unix seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime

from .served import Served

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _is_time(value: object) -> bool:
    return isinstance(value, str) and RFC3339.match(value) is not None


def _seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_every_time_in_a_body_is_rfc3339_utc(served: Served) -> None:
    before = time.time()
    run = served.start()
    assert _is_time(run["created_at"]) and _is_time(run["updated_at"])
    assert run["finished_at"] is None
    assert before - 1 <= _seconds(run["created_at"]) <= time.time() + 1
    served.wait_for(run["id"], "waiting")

    page = served.as_("viewer", "GET", "/v1/runs").json()
    assert all(_is_time(r["created_at"]) for r in page["items"])
    [approval] = [
        a for a in served.as_("reviewer", "GET", "/v1/approvals").json() if a["run_id"] == run["id"]
    ]
    assert _is_time(approval["requested_at"]) and _is_time(approval["expires_at"])
    assert _seconds(approval["expires_at"]) > _seconds(approval["requested_at"])
    one = served.as_("viewer", "GET", f"/v1/approvals/{approval['id']}").json()
    assert one["requested_at"] == approval["requested_at"]

    events = served.as_("viewer", "GET", f"/v1/runs/{run['id']}/events").json()
    assert events and all(_is_time(e["ts"]) for e in events)
    audit = served.as_("admin", "GET", "/v1/audit/events").json()
    assert audit["items"] and all(_is_time(e["ts"]) for e in audit["items"])
    versions = served.as_("viewer", "GET", "/v1/agents/support-desk/versions").json()
    assert versions and all(_is_time(v["created_at"]) for v in versions)

    finished = served.as_(
        "reviewer", "POST", f"/v1/runs/{run['id']}/cancel", json={"reason": "test"}
    ).json()
    assert _is_time(finished["finished_at"])


def test_the_openapi_schema_documents_times_as_date_time(served: Served) -> None:
    schemas = served.as_("viewer", "GET", "/openapi.json").json()["components"]["schemas"]
    for model, field in (("RunOut", "created_at"), ("ApprovalOut", "expires_at"),
                         ("EventOut", "ts")):  # fmt: skip
        shown = schemas[model]["properties"][field]
        assert shown["type"] == "string" and shown["format"] == "date-time", shown


def test_time_queries_take_rfc3339_or_unix_seconds(served: Served) -> None:
    run = served.start()
    served.wait_for(run["id"], "waiting")
    started = run["created_at"]
    everything = served.as_("admin", "GET", "/v1/audit/events", params={"limit": 1000}).json()
    by_text = served.as_(
        "admin", "GET", "/v1/audit/events", params={"since": started, "limit": 1000}
    ).json()
    by_number = served.as_(
        "admin", "GET", "/v1/audit/events",
        params={"since": str(_seconds(started)), "limit": 1000},
    ).json()  # fmt: skip
    assert by_text["items"] == by_number["items"]
    assert 0 < len(by_text["items"]) <= len(everything["items"])
    later = served.as_(
        "admin", "GET", "/v1/audit/events", params={"since": "2099-01-01T00:00:00+00:00"}
    ).json()
    assert later["items"] == []
    for bad, says in (("2025-12-03T04:06:17", "has no zone"), ("yesterday", "is not a time")):
        refused = served.as_("admin", "GET", "/v1/audit/events", params={"since": bad})
        assert refused.status_code == 422, refused.text
        assert "since" in refused.text and says in refused.text
