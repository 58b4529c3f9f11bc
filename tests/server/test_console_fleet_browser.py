"""The fleet view in a real headless Chromium (pattern of test_console_browser.py): runs
search, the overview charts (all agents and one), the audit page's range filter, expand
and export, dark mode, and a 390 px wide phone. Screenshots go to build/screenshots/fleet
(and /work/screens/fleet when that directory exists, for review)."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import httpx

from steward.core.decision import Decision, Reason, Verdict
from steward.core.events import GateDecided, RunFinished, RunStarted, RunStatus, ToolSucceeded
from steward.store import Journal

from .test_console_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS, Live, live  # noqa: F401

FLEET = SHOTS / "fleet"
REVIEW = Path("/work/screens/fleet")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(UTC\)$")


def _shot(page: object, name: str, **kwargs: object) -> None:
    FLEET.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=FLEET / name, **kwargs)  # type: ignore[attr-defined]
    if REVIEW.is_dir():
        page.screenshot(path=REVIEW / name, **kwargs)  # type: ignore[attr-defined]


def _history(served: Live) -> None:
    """A week of finished runs of the demo agent: outcomes, tool latencies, denials."""
    journal = Journal(served.db)
    now = time.time()
    outcomes = [RunStatus.SUCCEEDED] * 5 + [RunStatus.ESCALATED, RunStatus.FAILED]
    try:
        for i in range(70):
            run_id, start = f"hist_{i:03d}", now - (i % 7) * 86400 - 3600 - i
            tenant = ("acme", "globex")[i % 2]
            journal.append(run_id, RunStarted("support-desk", "v1", f"Where is order #{10000 + i}?",
                                              {"tenant": tenant, "started_by": "ops"}), ts=start)  # fmt: skip
            journal.append(run_id, ToolSucceeded("k1", "lookup_order", {}, 20.0 + i * 3, 1,
                                                 cost_usd=0.002 * (i % 4)), ts=start + 1)  # fmt: skip
            if i % 4 == 0:
                rule = ("refund-limit", "pii-egress", "refund-limit", "scan.injection")[
                    (i // 4) % 4
                ]
                deny = Decision(Verdict.DENY, (Reason("policy.deny", "no"),), (rule,))
                journal.append(
                    run_id, GateDecided("k2", "issue_refund", "policy", deny), ts=start + 2
                )
            outcome = outcomes[(i // 7) % len(outcomes)]  # a mix on every day
            journal.append(
                run_id, RunFinished(outcome, f"Order #{10000 + i} shipped."), ts=start + 2 + i % 9
            )
        journal.flush_sync()
    finally:
        journal.close()


def test_fleet_view_in_the_browser(live: Live) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    _history(live)
    shipping = live.api("POST", "/v1/runs", json={"agent": "support-desk", "tags": {"tenant": "hooli"},
                        "input": "Is there a minimum spend for free shipping?"}).json()["id"]  # fmt: skip
    refund = live.api("POST", "/v1/runs", json={"agent": "support-desk",
                      "input": "Please refund order #10056, it arrived broken: $330."}).json()["id"]  # fmt: skip
    decided = live.api("POST", "/v1/runs", json={"agent": "support-desk",
                       "input": "Please refund order #10057, it arrived broken: $330."}).json()["id"]  # fmt: skip
    live.wait_for(shipping, "succeeded")
    live.wait_for(refund, "waiting")
    live.wait_for(decided, "waiting")
    reviewer = {"Authorization": f"Bearer {live.tokens['reviewer']}"}
    [approval] = [a for a in httpx.get(f"{live.url}/v1/approvals", headers=reviewer, timeout=10).json()
                  if a["run_id"] == decided]  # fmt: skip
    answer = httpx.post(f"{live.url}/v1/approvals/{approval['id']}/decision", headers=reviewer,
                        json={"decision": "reject", "comment": "not covered"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(
                viewport={"width": 1366, "height": 900}, accept_downloads=True
            )
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()

            # search: words in input or answer, then a tag
            search = page.locator("#run-search")
            search.locator("input[name=q]").fill("minimum shipping")
            search.get_by_role("button", name="Search").click()
            expect(page.locator("table.table tbody tr")).to_have_count(1)
            expect(page.get_by_role("link", name=shipping)).to_be_visible()
            title = page.locator("table.table time").first.get_attribute("title") or ""
            assert RFC3339.match(title), title  # the absolute time, with its zone, on hover
            _shot(page, "1-runs-search.png", full_page=True)
            page.goto(f"{live.url}/console/runs?tag=tenant%3Dglobex")
            expect(page.locator("table.table tbody tr")).to_have_count(25)  # a full page
            page.goto(f"{live.url}/console/runs?q=zzzz-nothing")
            expect(page.get_by_text("No runs match these filters.")).to_be_visible()

            # the fleet overview
            page.get_by_role("link", name="Overview").click()
            expect(page.locator("h1")).to_have_text("Fleet overview")
            expect(page.locator("#chart-outcomes svg rect.s-succeeded").first).to_be_attached()
            expect(page.locator("#chart-denials svg")).to_contain_text("refund-limit")
            pending = page.locator(".card-figure", has_text="Approvals pending")
            expect(pending.locator(".figure-value")).to_have_text("1")
            decision = page.locator(".card-figure", has_text="Time to decision")
            expect(decision).to_contain_text("1 decided")
            _shot(page, "2-overview.png", full_page=True)
            page.locator(".chips").get_by_role("link", name="support-desk").click()
            expect(page.locator("h1")).to_have_text("support-desk")
            expect(page.locator("#chart-tools")).to_contain_text("lookup_order")
            _shot(page, "3-overview-agent.png", full_page=True)
            page.goto(f"{live.url}/console/overview?since=tomorrow")
            expect(page.get_by_text("query.since")).to_be_visible()

            # audit: a range and a type, who acted, the full event, the export of that range
            today = time.strftime("%Y-%m-%d", time.gmtime())
            page.goto(f"{live.url}/console/audit")
            form = page.locator("#audit-filter")
            form.locator("input[name=type]").fill("run.started")
            form.locator("input[name=since]").fill(today)
            form.get_by_role("button", name="Filter").click()
            rows = page.locator("table.table-audit tbody tr")
            expect(rows.first).to_be_visible()
            for text in rows.locator("td:nth-child(3)").all_inner_texts():
                assert text == "run.started"
            expect(page.locator("td.actor", has_text="admin").first).to_be_visible()
            rows.first.locator("summary").click()
            expect(rows.first.locator("details pre")).to_contain_text('"input"')
            _shot(page, "4-audit-filtered.png", full_page=True)
            with page.expect_download() as download:
                page.get_by_role("link", name="CSV").click()
            exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
            assert exported[0][:6] == ["id", "run_id", "type", "ts", "ts_unix", "actor"]
            assert len(exported) > 2 and {row[2] for row in exported[1:]} == {"run.started"}
            assert all(row[3].startswith(today) for row in exported[1:])  # only the range
            with page.expect_download() as download:
                page.get_by_role("link", name="JSONL").click()
            assert len(Path(download.value.path()).read_text().splitlines()) == len(exported) - 1
            context.close()

            # dark mode
            dark = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme="dark")
            dark.set_default_timeout(WAIT_MS)
            page = dark.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/overview")
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background in {"rgb(11, 16, 24)", "rgba(0, 0, 0, 0)"}, background
            root = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            assert root == "rgb(11, 16, 24)", root
            _shot(page, "5-overview-dark.png", full_page=True)
            dark.close()

            # a phone, 390 px wide: nothing wider than the screen but the tables' own scroll
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                        has_touch=True, device_scale_factor=2)  # fmt: skip
            phone.set_default_timeout(WAIT_MS)
            page = phone.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            for path, name in (("/console/runs", "6-phone-runs.png"),
                               ("/console/overview", "7-phone-overview.png"),
                               ("/console/audit", "8-phone-audit.png")):  # fmt: skip
                page.goto(live.url + path)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{path} is {width} px wide on a 390 px phone"
                _shot(page, name, full_page="overview" in path)
            phone.close()
        finally:
            browser.close()
