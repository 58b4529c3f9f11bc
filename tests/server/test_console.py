"""The console through a TestClient: signing in and out, each page, roles, the same-origin
check, decisions with their flash messages and friendly error pages."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import update

from steward.server.console import pages_audit, pages_runs
from steward.store.schema import events

from .served import Served

ORIGIN = {"Origin": "http://testserver"}
QUICK = "Is there a minimum spend for free shipping?"


def sign_in(served: Served, who: str) -> httpx.Response:
    response = served.client.post(
        "/console/sign-in", data={"token": served.tokens[who]}, headers=ORIGIN,
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    return response


def get(served: Served, url: str, status: int = 200) -> str:
    response = served.client.get(url, follow_redirects=False)
    assert response.status_code == status, response.text
    return response.text


def post(served: Served, url: str, data: dict[str, str], **headers: str) -> httpx.Response:
    return served.client.post(url, data=data, headers=headers or ORIGIN, follow_redirects=False)


def pending_id(served: Served, run_id: str) -> str:
    found = [a for a in served.as_("admin", "GET", "/v1/approvals").json() if a["run_id"] == run_id]
    assert len(found) == 1, found
    return str(found[0]["id"])


def waiting_run(served: Served) -> tuple[str, str]:
    run_id = str(served.start(who="agent")["id"])
    served.wait_for(run_id, "waiting")
    return run_id, pending_id(served, run_id)


# -- signing in and out ----------------------------------------------------------------


def test_signed_out_pages_redirect_to_sign_in_and_back(served: Served) -> None:
    response = served.client.get("/console/approvals", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/console/approvals"
    assert "Paste your steward API key" in get(served, "/console/sign-in?next=/console/approvals")

    signed = served.client.post(
        "/console/sign-in",
        data={"token": served.tokens["reviewer"], "next": "/console/approvals"},
        headers=ORIGIN, follow_redirects=False,
    )  # fmt: skip
    assert signed.headers["location"] == "/console/approvals"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if "steward_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/;" in cookie
    assert "Secure" not in cookie  # plain http
    page = get(served, "/console/approvals")
    assert "Signed in as reviewer-1 (reviewer)." in page
    assert 'class="who"' in page and ">reviewer</span>" in page


def test_sign_in_follows_only_console_paths(served: Served) -> None:
    for target in ("https://evil.example/", "//evil.example", "/v1/runs"):
        response = served.client.post(
            "/console/sign-in", data={"token": served.tokens["viewer"], "next": target},
            headers=ORIGIN, follow_redirects=False,
        )  # fmt: skip
        assert response.headers["location"] == "/console/runs"


def test_the_session_cookie_is_secure_over_https(served: Served) -> None:
    response = served.client.post(
        "https://testserver/console/sign-in", data={"token": served.tokens["viewer"]},
        headers={"Origin": "https://testserver"}, follow_redirects=False,
    )  # fmt: skip
    cookie = next(c for c in response.headers.get_list("set-cookie") if "steward_session=" in c)
    assert "Secure" in cookie


def test_sign_out_ends_the_session(served: Served) -> None:
    sign_in(served, "viewer")
    get(served, "/console/runs")
    session = served.client.cookies["steward_session"]
    out = post(served, "/console/sign-out", {})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert "steward_session" not in served.client.cookies
    assert "Signed out." in get(served, "/console/sign-in")
    get(served, "/console/runs", status=303)
    served.client.cookies.set("steward_session", session)  # the old cookie is dead too
    get(served, "/console/runs", status=303)


@pytest.mark.parametrize(
    ("who", "status", "message"),
    [
        ("agent", 403, "Agent keys cannot sign in to the console"),
        ("nobody", 401, "That key is not valid"),
    ],
)
def test_bad_keys_do_not_sign_in(served: Served, who: str, status: int, message: str) -> None:
    token = served.tokens.get(who, "stw_0123456789ab_" + "x" * 43)
    response = post(served, "/console/sign-in", {"token": token})
    assert response.status_code == status and message in response.text
    assert "steward_session" not in response.headers.get("set-cookie", "")
    get(served, "/console/runs", status=303)


# -- pages -----------------------------------------------------------------------------


def test_runs_list_filters_and_pages_older(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_runs, "PAGE_SIZE", 2)
    quick = [served.start(QUICK)["id"] for _ in range(3)]
    for run_id in quick:
        served.wait_for(run_id, "succeeded")
    waiting, _ = waiting_run(served)
    sign_in(served, "viewer")

    first = get(served, "/console/runs")
    assert waiting in first and quick[2] in first and quick[0] not in first
    assert '<span class="pill pill-amber">waiting</span>' in first
    assert '<span class="pill pill-green">succeeded</span>' in first
    older = re.search(r'href="/console/runs(\?cursor=[^"]+)">Older', first)
    assert older is not None
    second = get(served, "/console/runs" + older.group(1).replace("&amp;", "&"))
    assert quick[1] in second and quick[0] in second and waiting not in second
    assert "← Newest" in second

    only_waiting = get(served, "/console/runs?status=waiting&agent=support-desk")
    assert waiting in only_waiting and quick[2] not in only_waiting
    assert "No runs match these filters" in get(served, "/console/runs?agent=nobody")


def test_run_page_shows_the_timeline_and_refreshes_until_finished(served: Served) -> None:
    run_id, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    live = get(served, f"/console/runs/{run_id}")
    assert 'data-refresh="2"' in live  # console.js reloads; a meta refresh without JS
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in live
    for text in ("Run started", "Proposed call: issue_refund", "tier.requires_human_review",
                 "Approval requested for issue_refund", "&#34;amount_usd&#34;: 330.0",
                 "This run is waiting for a person", "Cancel run"):  # fmt: skip
        assert text in live, text

    post(
        served, f"/console/approvals/{approval_id}/decide", {"decision": "approve", "comment": "ok"}
    )
    served.wait_for(run_id, "succeeded")
    done = get(served, f"/console/runs/{run_id}")
    assert "refresh" not in done and "Cancel run" not in done
    for text in ("Approval decided", '<span class="pill pill-green">approved</span>',
                 "reviewer:reviewer-1", "approval.granted", "issue_refund succeeded",
                 "Run finished", "Outcome: succeeded", "refunded $330"):  # fmt: skip
        assert text in done, text
    assert re.search(r"latency</dt><dd>[\d.]+ ms", done)


def test_unknown_pages_and_runs_are_friendly_404s(served: Served) -> None:
    sign_in(served, "viewer")
    for url in ("/console/runs/run_nope", "/console/nothing-here"):
        response = served.client.get(url)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text and "Traceback" not in response.text
    assert "no run with id &#39;run_nope&#39;" in get(served, "/console/runs/run_nope", 404)
    api = served.as_("viewer", "GET", "/v1/runs/run_nope")  # the API still answers JSON
    assert api.status_code == 404 and api.json()["error"]["code"]


def test_the_audit_view_filters_pages_and_verifies(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = waiting_run(served)
    sign_in(served, "viewer")
    page = get(served, f"/console/audit?run_id={run_id}")
    assert "run.started" in page and "approval.requested" in page and "key.created" not in page
    approvals_only = get(served, "/console/audit?type=approval.")
    assert "approval.requested" in approvals_only and "tool.proposed" not in approvals_only

    monkeypatch.setattr(pages_audit, "PAGE_SIZE", 3)
    newest = get(served, "/console/audit")
    ids = [int(i) for i in re.findall(r'<td class="num mono">(\d+)</td>', newest)]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    older = get(served, f"/console/audit?before_id={ids[-1]}")
    assert int(re.findall(r'<td class="num mono">(\d+)</td>', older)[0]) == ids[-1] - 1

    verified = get(served, "/console/audit/verify")
    assert ">OK</span>" in verified and "The chain is intact" in verified
    with served.db.writer.begin() as connection:
        connection.execute(update(events).where(events.c.id == ids[-1]).values(data='{"x": 1}'))
    broken = get(served, "/console/audit/verify")
    assert ">BROKEN</span>" in broken and "The chain is broken" in broken
    assert f'<td class="num mono">{ids[-1]}</td>' in broken.split("verify-result")[1]
