"""MCP pins over the API: people list them, an admin
approves a quarantined definition, bound to the hash reviewed; errors name the problem."""

from __future__ import annotations

from steward.store.audit import query_events
from steward.store.mcp_pins import observe_pin

from .served import Served


def _quarantine(served: Served, agent: str = "support-desk") -> str:
    observe_pin(served.db, agent, "crm.lookup", "a" * 64, '{"v":1}')
    pin = observe_pin(served.db, agent, "crm.lookup", "b" * 64, '{"v":2}')
    assert pin.status == "quarantined"
    return pin.seen_sha256


def test_list_and_approve(served: Served) -> None:
    seen = _quarantine(served)
    _quarantine(served, agent="other")
    listed = served.as_("viewer", "GET", "/v1/mcp/pins", params={"quarantined": "true"}).json()
    assert [(p["agent"], p["tool"], p["reason"]) for p in listed] == [
        ("other", "crm.lookup", "mcp.definition_changed"),
        ("support-desk", "crm.lookup", "mcp.definition_changed"),
    ]
    assert listed[1]["definition"] == '{"v":2}'
    mine = served.as_("viewer", "GET", "/v1/mcp/pins", params={"agent": "other"}).json()
    assert {p["agent"] for p in mine} == {"other"}

    url = "/v1/mcp/pins/support-desk/crm.lookup/approve"
    assert served.as_("reviewer", "POST", url, json={}).status_code == 403
    stale = served.as_("admin", "POST", url, json={"sha256": "c" * 64})
    assert stale.status_code == 409 and "review it again" in stale.text
    bad = served.as_("admin", "POST", url, json={"sha256": "nope"})
    assert bad.status_code == 422 and "sha256" in bad.text
    approved = served.as_("admin", "POST", url, json={"sha256": seen})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "pinned"
    assert approved.json()["updated_by"].startswith("admin")
    assert served.as_("admin", "POST", url, json={}).status_code == 409  # not quarantined now
    missing = served.as_("admin", "POST", "/v1/mcp/pins/support-desk/crm.none/approve", json={})
    assert missing.status_code == 404
    audit = [e.data for e in query_events(served.db, type_prefix="mcp.")]
    assert [(e["agent"], e["status"], e["by"][:5]) for e in audit][-1] == (
        "support-desk",
        "pinned",
        "admin",
    )


def test_the_console_shows_pins_and_admins_approve(served: Served) -> None:
    from .test_console import QUICK, get, post, sign_in

    served.wait_for(served.start(QUICK)["id"], "succeeded")  # the agent has a stored version
    seen = _quarantine(served)
    sign_in(served, "reviewer")
    page = get(served, "/console/agents")
    assert "crm.lookup" in page and "mcp.definition_changed" in page
    assert "Approve this definition" not in page
    url = "/console/agents/support-desk/mcp/crm.lookup/approve"
    assert post(served, url, {"sha256": seen}).status_code == 403
    sign_in(served, "admin")
    assert "Approve this definition" in get(served, "/console/agents")
    assert post(served, url, {"sha256": seen}).status_code == 303
    page = get(served, "/console/agents")
    assert "its new definition is approved" in page
    assert '<span class="pill pill-green">pinned</span>' in page
