"""The agent's answer after an approval says what ran: an edit that changes the order is
what the customer is told about, never the order first proposed."""

from __future__ import annotations

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
        json={"decision": "approve", "arguments": edited},
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
