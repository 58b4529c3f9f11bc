"""The approval queue at volume: filter by a run tag (a tenant), sort by the largest
amount-like argument, and, on an approval's own page, the whole conversation that led to
the call. (Paging, agent/tool filters, keys and bulk reject: test_console_approval_card.py
and test_console_browser.py.)"""

from __future__ import annotations

import time

import pytest

from steward.store import Database
from steward.store.approvals import list_approvals
from steward.store.schema import approvals, runs

from .served import Served
from .test_console import get, sign_in


def refund(amount: str) -> str:
    return (
        "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
        f"Order #10114 arrived without the ultralight tent. Please refund ${amount} for it."
    )


def held(served: Served, amount: str, tenant: str) -> str:
    response = served.as_("agent", "POST", "/v1/runs", json={
        "agent": "support-desk", "input": refund(amount), "tags": {"tenant": tenant},
    })  # fmt: skip
    assert response.status_code == 202, response.text
    run_id = str(response.json()["id"])
    served.wait_for(run_id, "waiting")
    return run_id


def order_of(page: str, run_ids: list[str]) -> list[str]:
    """The run ids in the order their cards appear."""
    return sorted((r for r in run_ids if f'href="/console/runs/{r}"' in page),
                  key=lambda r: page.index(f'href="/console/runs/{r}"'))  # fmt: skip


def test_the_queue_filters_by_tenant_and_sorts_by_amount(served: Served) -> None:
    small = held(served, "75", "acme")
    large = held(served, "330", "globex")
    middle = held(served, "120", "acme")
    every = [small, large, middle]
    sign_in(served, "reviewer")

    assert order_of(get(served, "/console/approvals"), every) == [small, large, middle]
    by_amount = get(served, "/console/approvals?sort=amount")
    assert order_of(by_amount, every) == [large, middle, small]
    assert '<option value="amount" selected>largest amount first</option>' in by_amount

    acme = get(served, "/console/approvals?tag=tenant%3Dacme&sort=amount")
    assert order_of(acme, every) == [middle, small]
    assert 'name="tag" value="tenant=acme"' in acme
    nobody = get(served, "/console/approvals?tag=tenant%3Dinitech")
    assert order_of(nobody, every) == []
    assert "Nothing is waiting for a decision here" in nobody

    bad = served.client.get("/console/approvals?tag=tenant", follow_redirects=False)
    assert bad.status_code == 422 and "is not key=value" in bad.text


def test_the_card_page_shows_the_whole_conversation(served: Served) -> None:
    run_id = held(served, "330", "acme")
    sign_in(served, "reviewer")
    approval_id = next(a.id for a in list_approvals(served.db) if a.run_id == run_id)
    page = get(served, f"/console/approvals/{approval_id}")
    assert "The request that started the run" in page and "ultralight tent" in page
    assert "the whole conversation that led to this call" in page
    assert "What the agent looked up first" not in page  # the conversation has it, in order
    steps = ["Proposes lookup_order", "lookup_order returned",
             "Proposes the held call issue_refund"]  # fmt: skip
    positions = [page.index(f'<span class="turn-label">{s}') for s in steps]
    assert positions == sorted(positions)
    assert "&#34;order_id&#34;: &#34;10114&#34;" in page[positions[1] : positions[2]]
    assert "&#34;amount_usd&#34;: 330.0" in page[positions[2] :]
    assert 'class="turn turn-agent turn-held"' in page
    queue = get(served, "/console/approvals")  # the queue stays compact
    assert "the whole conversation" not in queue


# -- the store, on both databases --------------------------------------------------------


def _approval(db: Database, n: int, arguments: str, tags: str) -> None:
    now = time.time() + n
    with db.writer.begin() as connection:
        connection.execute(runs.insert().values(
            id=f"run_{n}", agent="a", agent_version="1", status="waiting", input="",
            output="", reason_code="", reason="", steps=0, tags=tags, created_at=now,
            updated_at=now,
        ))  # fmt: skip
        connection.execute(approvals.insert().values(
            id=f"apr_{n}", run_id=f"run_{n}", call_id="c", agent="a", tool="t",
            arguments=arguments, call_hash="h", status="pending", reason="", requested_at=now,
            expires_at=now + 3600, comment="",
        ))  # fmt: skip


@pytest.mark.parametrize("db_name", ["sqlite_db", "postgres_db"])
def test_amounts_and_tags_in_sql(db_name: str, request: pytest.FixtureRequest) -> None:
    db: Database = request.getfixturevalue(db_name)
    _approval(db, 1, '{"amount_usd": 40}', '{"tenant": "acme"}')
    _approval(db, 2, '{"amount_usd": "lots"}', '{"tenant": "acme"}')  # not a number
    _approval(db, 3, '{"total": 900.5}', '{"tenant": "globex"}')
    _approval(db, 4, '{"order_id": "10114"}', "{}")  # no amount at all
    _approval(db, 5, '{"amount_usd": 120, "total": 1}', '{"tenant": "acme", "region": "eu"}')

    def ids(**kwargs: object) -> list[str]:
        return [a.id for a in list_approvals(db, "pending", 10, **kwargs)]  # type: ignore[arg-type]

    assert ids(amount_keys=("amount_usd", "total")) == ["apr_3", "apr_5", "apr_1", "apr_2", "apr_4"]
    assert ids(tags={"tenant": "acme"}) == ["apr_1", "apr_2", "apr_5"]
    assert ids(tags={"tenant": "acme", "region": "eu"}) == ["apr_5"]
    assert ids(tags={"tenant": "acme"}, amount_keys=("amount_usd",)) == ["apr_5", "apr_1", "apr_2"]
    with pytest.raises(ValueError, match="not a field name"):
        ids(tags={"tenant') or 1=1 --": "x"})
