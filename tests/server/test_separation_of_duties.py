"""Four eyes by identity, in the API and the console: keys belong to principals, and whoever
started a run may not decide its requests with any of their keys. Labels decide nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from steward.security.keys import Role
from steward.store.audit import query_events
from steward.store.keys import create_key, list_keys
from steward.store.schema import runs

from .served import LARGE_REFUND, Served
from .test_console import ORIGIN, pending_id


def _key(served: Served, name: str, role: Role) -> dict[str, str]:
    token = create_key(served.db, name=name, role=role, by="test")[1]
    return {"Authorization": f"Bearer {token}"}


def _principal_of(served: Served, name: str) -> str:
    [found] = {k.principal_id for k in list_keys(served.db) if k.name == name}
    return found


def _waiting_run(served: Served, starter: dict[str, str]) -> tuple[str, str]:
    response = served.client.post(
        "/v1/runs", json={"agent": "support-desk", "input": LARGE_REFUND}, headers=starter
    )
    assert response.status_code == 202, response.text
    run_id = str(response.json()["id"])
    served.wait_for(run_id, "waiting")
    return run_id, pending_id(served, run_id)


def _decide(served: Served, approval_id: str, headers: dict[str, str]) -> Any:
    return served.client.post(
        f"/v1/approvals/{approval_id}/decision", json={"decision": "approve"}, headers=headers
    )


def test_a_second_key_of_the_person_who_started_the_run_may_not_decide(served: Served) -> None:
    """The reported bypass: an admin key `ops` starts the run, a reviewer key `ops`
    approves it. Both keys are the same person (one principal `ops`)."""
    admin = _key(served, "ops", Role.ADMIN)
    reviewer = _key(served, "ops", Role.REVIEWER)
    run_id, approval_id = _waiting_run(served, admin)
    refused = _decide(served, approval_id, reviewer)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "auth.separation_of_duties"
    assert served.as_("reviewer", "GET", f"/v1/approvals/{approval_id}").json()["status"] == (
        "pending"
    )
    # another person decides, and the audit records who, by principal
    assert served.as_("reviewer", "POST", f"/v1/approvals/{approval_id}/decision",
                      json={"decision": "approve"}).status_code == 200  # fmt: skip
    served.wait_for(run_id, "succeeded")
    [decided] = query_events(served.db, run_id=run_id, type_prefix="approval.decided")
    assert decided.data["by"] == "reviewer:reviewer-1"
    assert decided.data["principal"] == _principal_of(served, "reviewer-1")


def test_the_run_records_the_principal_that_started_it(served: Served) -> None:
    admin = _key(served, "ops", Role.ADMIN)
    run_id, _ = _waiting_run(served, admin)
    run = served.as_("admin", "GET", f"/v1/runs/{run_id}").json()
    assert run["tags"]["started_by_principal"] == _principal_of(served, "ops")
    assert run["tags"]["started_by"] == "admin:ops"


def test_a_forged_starter_tag_is_overwritten(served: Served) -> None:
    forged = served.as_(
        "admin", "POST", "/v1/runs",
        json={"agent": "support-desk", "input": LARGE_REFUND,
              "tags": {"started_by_principal": "prn_nobody", "started_by": "admin:nobody"}},
    )  # fmt: skip
    run_id = forged.json()["id"]
    served.wait_for(run_id, "waiting")
    assert forged.json()["tags"]["started_by_principal"] == _principal_of(served, "admin-1")
    refused = _decide(served, pending_id(served, run_id), served.headers("admin"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "auth.separation_of_duties"


def test_different_people_are_different_principals(served: Served) -> None:
    """alice starts, bob decides: two principals, however similar their roles."""
    alice = _key(served, "alice", Role.ADMIN)
    bob = _key(served, "bob", Role.ADMIN)
    run_id, approval_id = _waiting_run(served, alice)
    assert _decide(served, approval_id, bob).status_code == 200
    served.wait_for(run_id, "succeeded")


def test_the_console_refuses_the_starter_under_another_key(served: Served) -> None:
    admin_token = create_key(served.db, name="ops", role=Role.ADMIN, by="test")[1]
    reviewer_token = create_key(served.db, name="ops", role=Role.REVIEWER, by="test")[1]
    _, approval_id = _waiting_run(served, {"Authorization": f"Bearer {admin_token}"})
    signed = served.client.post(
        "/console/sign-in", data={"token": reviewer_token}, headers=ORIGIN, follow_redirects=False
    )
    assert signed.status_code == 303
    refused = served.client.post(
        f"/console/approvals/{approval_id}/decide", data={"decision": "approve"},
        headers=ORIGIN, follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 303
    page = served.client.get("/console/approvals").text
    assert "Not decided:" in page and "another person must decide" in page
    assert served.as_("admin", "GET", f"/v1/approvals/{approval_id}").json()["status"] == (
        "pending"
    )


def test_a_run_from_before_principals_is_matched_by_its_starters_unique_name(
    served: Served,
) -> None:
    """Runs started before this change carry only the `role:name` label; names are
    unique principals now, so the label's name finds the starter."""
    admin = _key(served, "ops", Role.ADMIN)
    reviewer = _key(served, "ops", Role.REVIEWER)
    run_id, approval_id = _waiting_run(served, admin)
    with served.db.writer.begin() as connection:
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(tags=json.dumps({"started_by": "admin:ops"}))
        )
    refused = _decide(served, approval_id, reviewer)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "auth.separation_of_duties"
