"""The agent's answer after an approval says what ran: an edit that changes the order is
what the customer is told about, never the order first proposed. And an edit that changes
an identifier (the order, an account, a recipient) is refused unless confirmed."""

from __future__ import annotations

from steward.runtime.approvals import argument_changes, is_identifier
from steward.store.approvals import get_approval

from .served import Served
from .test_console import pending_id

CHARGED_TWICE = (
    "I was charged twice for the smartwatch on order #10056. Please refund the extra $219.18."
)


def test_an_edited_refund_is_answered_from_what_ran(served: Served) -> None:
    run_id = str(served.start(CHARGED_TWICE, who="agent")["id"])
    served.wait_for(run_id, "waiting")
    approval_id = pending_id(served, run_id)
    edited = {"order_id": "10114", "amount_usd": 40, "reason": "partial"}
    decided = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval_id}/decision",
        json={"decision": "approve", "arguments": edited, "confirm_changed": ["order_id"]},
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    output = served.wait_for(run_id, "succeeded")["output"]
    assert "#10114" in output and "$40.00" in output, output
    assert "10056" not in output, output


def test_an_unedited_refund_names_the_proposed_order(served: Served) -> None:
    run_id = str(served.start(CHARGED_TWICE, who="agent")["id"])
    served.wait_for(run_id, "waiting")
    approval_id = pending_id(served, run_id)
    decided = served.as_(
        "reviewer", "POST", f"/v1/approvals/{approval_id}/decision", json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.text
    output = served.wait_for(run_id, "succeeded")["output"]
    assert "#10056" in output and "$219.18" in output, output


def test_an_unconfirmed_identifier_change_is_refused_naming_the_field(served: Served) -> None:
    run_id = str(served.start(CHARGED_TWICE, who="agent")["id"])
    served.wait_for(run_id, "waiting")
    approval_id = pending_id(served, run_id)
    url = f"/v1/approvals/{approval_id}/decision"
    edited = {"order_id": "10114", "amount_usd": 40, "reason": "partial"}
    refused = served.as_("reviewer", "POST", url, json={"decision": "approve", "arguments": edited})
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert message.startswith("body.arguments.order_id:") and "'10056' -> '10114'" in message
    assert get_approval(served.db, approval_id).status == "pending"
    wrong_field = {"decision": "approve", "arguments": edited, "confirm_changed": ["amount_usd"]}
    assert served.as_("reviewer", "POST", url, json=wrong_field).status_code == 422
    amount_only = {"order_id": "10056", "amount_usd": 40, "reason": "partial"}  # no id changed
    done = served.as_(
        "reviewer", "POST", url, json={"decision": "approve", "arguments": amount_only}
    )
    assert done.status_code == 200, done.text
    assert "#10056" in served.wait_for(run_id, "succeeded")["output"]


def test_which_arguments_are_identifiers() -> None:
    for key in ("order_id", "customerId", "id", "iban", "to", "recipients", "account_number"):
        assert is_identifier(key), key
    for key, value in (("note", "ava@example.com"), ("ref", "#10056"), ("x", "ORD-2231")):
        assert is_identifier(key, value), (key, value)
    for key, value in (("amount_usd", 40), ("reason", "partial refund"), ("paid", True)):
        assert not is_identifier(key, value), key
    changes = argument_changes(
        {"order_id": "10056", "amount_usd": 219.18, "reason": "r"},
        {"order_id": "10114", "amount_usd": 40, "cc": "x@example.com", "reason": "r"},
    )
    assert [(c.key, c.kind, c.identifier) for c in changes] == [
        ("amount_usd", "changed", False), ("cc", "added", True), ("order_id", "changed", True),
    ]  # fmt: skip


def test_a_value_set_to_null_is_a_change_not_a_removal() -> None:
    [change] = argument_changes({"to": "a@example.com"}, {"to": None})
    assert (change.kind, change.identifier) == ("changed", True)
    [removed] = argument_changes({"to": "a@example.com"}, {})
    assert removed.kind == "removed"
