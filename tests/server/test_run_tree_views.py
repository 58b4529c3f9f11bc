"""A delegation tree as the API and the console show it: `GET /v1/runs/{id}/tree` (root,
runs depth first, the chain to the run asked about), the run page's tree panel and links
to parent and root, and the approval queue's chain (root agent → … → agent).

The first trees are written straight to the journal, as the delegation mechanism records
them (tree fields on RunStarted); the last is grown by the mechanism itself, from the
multi-agent demo's triage through the API, and resumed by a person's decision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steward.cli.serve import DEMO_SPEC
from steward.core.events import ApprovalRequested, RunFinished, RunStarted, RunStatus, RunWaiting
from steward.demo import MULTI_AGENT_SPECS
from steward.demo.tools import SYSTEMS_ENV
from steward.server import create_app, load_agents
from steward.server.run_tree import depth_first
from steward.store import Database, Journal
from steward.store.runs import RunRow

from .served import LARGE_REFUND, Served, issue_keys
from .test_console import get, sign_in


def _start(agent: str, parent: str = "", root: str = "", hop: int = 0) -> RunStarted:
    return RunStarted(agent, "v1", "Refund $120 on order #10114", {"started_by": "p_ana"},
                      parent_run_id=parent, root_run_id=root, hop=hop,
                      parent_key=f"{parent}:0:c" if parent else "")  # fmt: skip


@pytest.fixture
def tree(served_any: Served) -> dict[str, str]:
    """triage → refunds → ledger (waiting for a person), and triage → orders (succeeded),
    with refunds started before orders; plus an unrelated root run. On SQLite, then on
    PostgreSQL."""
    ids = {"root": "run_t_root", "refunds": "run_t_ref", "ledger": "run_t_led",
           "orders": "run_t_ord", "other": "run_t_other"}  # fmt: skip
    journal = Journal(served_any.db)
    try:
        journal.append(ids["root"], _start("support-desk"))
        journal.flush_sync()
        journal.append(ids["refunds"], _start("refunds", ids["root"], ids["root"], 1))
        journal.flush_sync()
        journal.append(ids["orders"], _start("orders", ids["root"], ids["root"], 1))
        journal.flush_sync()
        journal.append(ids["ledger"], _start("ledger", ids["refunds"], ids["root"], 2))
        journal.append(ids["other"], _start("support-desk"))
        journal.append(ids["orders"], RunFinished(RunStatus.SUCCEEDED, "Order #10114 shipped."))
        journal.append(
            ids["ledger"],
            ApprovalRequested("apr_tree_1", "ledger", "run_t_led:1:c", "issue_refund",
                              {"order_id": "10114", "amount_usd": 120}, "h" * 64,
                              time.time() + 3600, "refunds over $50 need a person"),
        )  # fmt: skip
        journal.append(ids["ledger"], RunWaiting("review", ("apr_tree_1",)))
        journal.flush_sync()
    finally:
        journal.close()
    return ids


def test_the_tree_api_gives_root_depth_first_and_chain(
    served_any: Served, tree: dict[str, str]
) -> None:
    served = served_any
    for asked in (tree["root"], tree["ledger"], tree["orders"]):
        response = served.as_("viewer", "GET", f"/v1/runs/{asked}/tree")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["run_id"] == asked and body["root_run_id"] == tree["root"]
        # depth first: refunds, then what refunds delegated to, then orders
        assert [r["id"] for r in body["runs"]] == [
            tree["root"], tree["refunds"], tree["ledger"], tree["orders"],
        ]  # fmt: skip
        assert [(r["agent"], r["hop"], r["parent_run_id"]) for r in body["runs"]] == [
            ("support-desk", 0, None),
            ("refunds", 1, tree["root"]),
            ("ledger", 2, tree["refunds"]),
            ("orders", 1, tree["root"]),
        ]
        assert [r["status"] for r in body["runs"]] == ["running", "running", "waiting", "succeeded"]
    chain = served.as_("viewer", "GET", f"/v1/runs/{tree['ledger']}/tree").json()["chain"]
    assert chain == [tree["root"], tree["refunds"], tree["ledger"]]
    alone = served.as_("viewer", "GET", f"/v1/runs/{tree['other']}/tree").json()
    assert alone["chain"] == [tree["other"]] and [r["id"] for r in alone["runs"]] == [tree["other"]]
    missing = served.as_("viewer", "GET", "/v1/runs/run_nope/tree")
    assert missing.status_code == 404


def test_an_agent_key_sees_only_its_own_agents_runs_of_a_tree(
    served_any: Served, tree: dict[str, str]
) -> None:
    served = served_any
    """The demo agent's key reads support-desk runs; the specialists' runs are left out."""
    mine = served.as_("agent", "GET", f"/v1/runs/{tree['root']}/tree")
    assert mine.status_code == 200
    assert [r["id"] for r in mine.json()["runs"]] == [tree["root"]]
    assert mine.json()["chain"] == [tree["root"]]
    refused = served.as_("agent", "GET", f"/v1/runs/{tree['ledger']}/tree")
    assert refused.status_code == 403


def test_the_run_page_shows_the_tree_and_links_up(served_any: Served, tree: dict[str, str]) -> None:
    served = served_any
    sign_in(served, "viewer")
    page = get(served, f"/console/runs/{tree['ledger']}")
    panel = page[
        page.index('id="run-tree"') : page.index("</section>", page.index('id="run-tree"'))
    ]
    rows = re.findall(r'<li class="tree-node tree-hop-(\d)[^"]*" data-run="([^"]+)"', panel)
    assert rows == [
        ("0", tree["root"]), ("1", tree["refunds"]), ("2", tree["ledger"]), ("1", tree["orders"]),
    ]  # fmt: skip
    for run_id in (tree["root"], tree["refunds"], tree["orders"]):
        assert f'href="/console/runs/{run_id}"' in panel
    assert "(this run)" in panel and "hop 2" in panel
    assert ">waiting</span>" in panel and ">succeeded</span>" in panel
    up = page[page.index('id="delegated-by"') :]
    up = up[: up.index("</p>")]
    assert f'href="/console/runs/{tree["refunds"]}">refunds</a>' in up  # the parent
    assert f'href="/console/runs/{tree["root"]}">support-desk</a>' in up  # the root
    crumbs = page[page.index('class="crumbs"') :]
    crumbs = crumbs[: crumbs.index("</p>")]
    assert crumbs.index(tree["root"]) < crumbs.index(tree["refunds"]) < crumbs.index(tree["ledger"])

    root_page = get(served, f"/console/runs/{tree['root']}")
    assert 'id="run-tree"' in root_page and 'id="delegated-by"' not in root_page
    # what waits below a run waits for it too; a sibling branch does not
    for waiting in (tree["root"], tree["refunds"], tree["ledger"]):
        shown = get(served, f"/console/runs/{waiting}")
        assert "This run is waiting for a person" in shown and "apr_tree_1" in shown
    root_banner = root_page[root_page.index("This run is waiting") :]
    assert f'(in <a href="/console/runs/{tree["ledger"]}">ledger</a>' in root_banner
    assert "This run is waiting" not in get(served, f"/console/runs/{tree['orders']}")
    alone = get(served, f"/console/runs/{tree['other']}")
    assert 'id="run-tree"' not in alone and 'id="delegated-by"' not in alone


def test_the_approval_queue_shows_the_chain(served_any: Served, tree: dict[str, str]) -> None:
    served = served_any
    sign_in(served, "reviewer")
    for url in ("/console/approvals", "/console/approvals/apr_tree_1"):
        page = get(served, url)
        card = page[page.index('id="apr_tree_1"') :]
        assert _chain(card) == ["support-desk", "refunds", "ledger"]


def _chain(card: str) -> list[str]:
    """The agents of the card's 'Delegated:' line, in order."""
    line = card[card.index("Delegated:") : card.index("</p>", card.index("Delegated:"))]
    assert line.count("→") == line.count('<span class="mono">') - 1
    return re.findall(r'<span class="mono">([^<]+)</span>', line)


def _row(run_id: str, parent: str | None, at: float) -> RunRow:
    return RunRow(run_id, "a", "v", "running", "", "", None, "", "", 0, {}, at, at, None,
                  parent_run_id=parent, root_run_id=None if parent is None else "r",
                  hop=0 if parent is None else 1)  # fmt: skip


def test_depth_first_keeps_a_run_whose_parent_is_missing() -> None:
    rows = [_row("r", None, 0), _row("b", "r", 1), _row("x", "gone", 2), _row("c", "b", 3)]
    assert [r.id for r in depth_first(rows)] == ["r", "b", "c", "x"]
    assert depth_first([]) == ()


@pytest.fixture
def desk(sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The app serving the multi-agent demo's agents (what `steward serve --demo` loads)."""
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    tokens = issue_keys(sqlite_db)
    app = create_app(sqlite_db.url, load_agents([DEMO_SPEC, *MULTI_AGENT_SPECS]))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client, sqlite_db, tokens)


def test_a_delegated_review_shows_its_tree_and_chain_and_resumes_from_the_root(
    desk: Served,
) -> None:
    """triage hands a $330 refund to the refunds desk, whose issue_refund waits for a
    person: the tree, the run pages and the queue show it; the approval resumes the tree."""
    started = desk.as_("admin", "POST", "/v1/runs", json={"agent": "triage", "input": LARGE_REFUND})
    assert started.status_code == 202, started.text
    root = started.json()["id"]
    desk.wait_for(root, "waiting")
    tree = desk.as_("viewer", "GET", f"/v1/runs/{root}/tree").json()
    assert [(r["agent"], r["status"], r["hop"]) for r in tree["runs"]] == [
        ("triage", "waiting", 0), ("refunds", "waiting", 1),
    ]  # fmt: skip
    child = tree["runs"][1]["id"]
    assert tree["runs"][1]["parent_run_id"] == root and tree["runs"][1]["root_run_id"] == root
    approvals = [
        a for a in desk.as_("admin", "GET", "/v1/approvals").json() if a["run_id"] == child
    ]
    assert [a["tool"] for a in approvals] == ["issue_refund"]

    sign_in(desk, "reviewer")
    assert _chain(get(desk, f"/console/approvals/{approvals[0]['id']}")) == ["triage", "refunds"]
    assert approvals[0]["chain"] == ["triage", "refunds"]
    child_page = get(desk, f"/console/runs/{child}")
    assert f'href="/console/runs/{root}">triage</a>' in child_page  # up to the parent, the root

    decided = desk.as_(
        "reviewer", "POST", f"/v1/approvals/{approvals[0]['id']}/decision",
        json={"decision": "approve", "comment": "photo confirms it"},
    )  # fmt: skip
    assert decided.status_code == 200, decided.text
    done = desk.wait_for(root, "succeeded")
    assert "refunded $330.00 on order #10114" in done["output"]
    after = desk.as_("viewer", "GET", f"/v1/runs/{child}/tree").json()
    assert [(r["agent"], r["status"]) for r in after["runs"]] == [
        ("triage", "succeeded"), ("refunds", "succeeded"),
    ]  # fmt: skip
    assert after["chain"] == [root, child]
