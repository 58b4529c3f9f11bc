"""The approval card gives a reviewer what they need: the customer's request, what the
agent looked up, the rule, risk and data classes, the expiry, each argument's source, and
an edit as a diff whose changed identifiers need a ticked confirmation (server-side)."""

from __future__ import annotations

import html
import re

import pytest

from steward.server.console import pages_approvals
from steward.store.approvals import get_approval

from .served import Served
from .test_console import get, pending_id, post, sign_in

CHARGED_TWICE = (
    "I was charged twice for the smartwatch on order #10056. Please refund the extra $219.18."
)


def _waiting(served: Served, text: str = CHARGED_TWICE) -> tuple[str, str]:
    run_id = str(served.start(text, who="agent")["id"])
    served.wait_for(run_id, "waiting")
    return run_id, pending_id(served, run_id)


def test_the_card_shows_request_lookup_rule_risk_expiry_and_provenance(served: Served) -> None:
    _, approval_id = _waiting(served)
    sign_in(served, "viewer")
    queue = html.unescape(get(served, "/console/approvals"))
    card = queue[queue.index(f'id="{approval_id}"') :]
    assert "The request that started the run" in card and CHARGED_TWICE in card
    assert "What the agent looked up first" in card and "lookup_order" in card
    assert "requires_human_review" in card  # the reason
    assert re.search(r"rule</span> <span class=\"mono\">[\w.-]+</span>", card)
    assert '<span class="pill pill-amber">write</span>' in card
    assert "data classes</span> none declared" in card or "data classes</span> <span" in card
    assert re.search(r'title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(zone: UTC\)"', card)
    row = re.search(r'<td class="mono">order_id.*?</tr>', card, re.S)
    assert row is not None and '"10056"' in row.group(0) and ">user</span>" in row.group(0)
    assert "identifier" in row.group(0)


def test_a_changed_identifier_is_flagged_and_needs_the_box_ticked(served: Served) -> None:
    run_id, approval_id = _waiting(served)
    sign_in(served, "reviewer")
    url = f"/console/approvals/{approval_id}/decide"
    edited = '{"order_id": "10114", "amount_usd": 40, "reason": "partial"}'
    refused = post(served, url, {"decision": "edit", "arguments": edited, "comment": "c"})
    assert refused.status_code == 422
    page = html.unescape(refused.text)
    assert "identifier 'order_id'" in page and "'10056' -> '10114'" in page
    assert "Your edit against the proposal" in page and "identifier changed" in page
    assert '<del>"10056"</del>' in page and '<ins>"10114"</ins>' in page
    assert "<del>219.18</del>" in page and "<ins>40</ins>" in page
    assert 'name="confirm" value="order_id"' in page
    assert edited in page  # the draft is kept
    assert get_approval(served.db, approval_id).status == "pending"

    wrong = post(served, url, {"decision": "edit", "arguments": edited, "confirm": "amount_usd"})
    assert wrong.status_code == 422
    done = post(served, url, {"decision": "edit", "arguments": edited, "confirm": "order_id"})
    assert done.status_code == 303, done.text
    assert get_approval(served.db, approval_id).status == "approved"
    assert "#10114" in served.wait_for(run_id, "succeeded")["output"]


def test_an_edit_of_amount_only_needs_no_confirmation(served: Served) -> None:
    run_id, approval_id = _waiting(served)
    sign_in(served, "reviewer")
    edited = '{"order_id": "10056", "amount_usd": 40, "reason": "partial"}'
    done = post(served, f"/console/approvals/{approval_id}/decide",
                {"decision": "edit", "arguments": edited})  # fmt: skip
    assert done.status_code == 303
    assert "#10056" in served.wait_for(run_id, "succeeded")["output"]


def test_the_queue_pages_filters_and_sorts_on_the_server(served: Served) -> None:
    ids = [_waiting(served, f"Please refund $100 on order #10056, try {n}.")[1] for n in range(3)]
    sign_in(served, "viewer")

    def shown(url: str) -> list[str]:
        found: list[str] = re.findall(r'class="panel approval" id="(apr_\w+)"', get(served, url))
        return found

    assert shown("/console/approvals") == ids
    assert shown("/console/approvals?sort=newest") == ids[::-1]
    assert shown("/console/approvals?tool=issue_refund") == ids
    assert shown("/console/approvals?tool=send_email") == []
    assert shown("/console/approvals?agent=nobody") == []
    assert "clear the filter" in get(served, "/console/approvals?agent=nobody")
    get(served, "/console/approvals?sort=sideways", status=422)
    get(served, "/console/approvals?page=0", status=422)


def test_the_queue_pages(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_approvals, "PAGE_SIZE", 2)
    ids = [_waiting(served, f"Please refund $100 on order #10056, try {n}.")[1] for n in range(3)]
    sign_in(served, "viewer")
    first = get(served, "/console/approvals")
    assert ids[0] in first and ids[1] in first and ids[2] not in first
    assert 'href="/console/approvals?page=2">Next page' in first
    second = get(served, "/console/approvals?page=2")
    assert ids[2] in second and ids[0] not in second and "Next page" not in second


def test_each_card_has_its_page_pending_or_decided(served: Served) -> None:
    _, approval_id = _waiting(served)
    sign_in(served, "reviewer")
    alone = get(served, f"/console/approvals/{approval_id}")
    assert f'id="{approval_id}"' in alone and "The request that started the run" in alone
    assert "queue-filter" not in alone and f"/console/approvals/{approval_id}/decide" in alone
    post(served, f"/console/approvals/{approval_id}/decide",
         {"decision": "reject", "comment": "duplicate ticket"})  # fmt: skip
    decided = html.unescape(get(served, f"/console/approvals/{approval_id}"))
    assert "Decided: rejected by" in decided and "duplicate ticket" in decided
    assert f"/console/approvals/{approval_id}/decide" not in decided
    get(served, "/console/approvals/apr_missing", status=404)


def test_bulk_reject_with_one_comment(served: Served) -> None:
    ids = [_waiting(served, f"Please refund $100 on order #10056, try {n}.")[1] for n in range(3)]
    sign_in(served, "reviewer")
    queue = get(served, "/console/approvals")
    assert 'action="/console/approvals/reject"' in queue and "bulk approve is not offered" in queue
    assert 'form="bulk" name="ids" value="' + ids[0] in queue
    url = "/console/approvals/reject"
    uncommented = post(served, url, {"ids": ids[:2]})  # type: ignore[dict-item]
    assert uncommented.status_code == 422 and "A bulk rejection needs a comment" in uncommented.text
    assert all(get_approval(served.db, i).status == "pending" for i in ids)
    none = post(served, url, {"comment": "x"})
    assert none.status_code == 303 and get_approval(served.db, ids[0]).status == "pending"
    done = post(served, url, {"ids": [ids[0], ids[1], "apr_missing"], "comment": "duplicates"})  # type: ignore[dict-item]
    assert done.status_code == 303
    assert [get_approval(served.db, i).status for i in ids] == ["rejected", "rejected", "pending"]
    assert get_approval(served.db, ids[0]).comment == "duplicates"
    after = html.unescape(get(served, "/console/approvals"))
    assert (
        "Rejected 2 request(s). Not decided: apr_missing (no approval with id 'apr_missing')"
        in after
    )


def test_a_viewer_cannot_bulk_reject(served: Served) -> None:
    _, approval_id = _waiting(served)
    sign_in(served, "viewer")
    assert "/console/approvals/reject" not in get(served, "/console/approvals")
    refused = post(served, "/console/approvals/reject", {"ids": approval_id, "comment": "no"})
    assert refused.status_code == 403
    assert get_approval(served.db, approval_id).status == "pending"
