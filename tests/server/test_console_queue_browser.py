"""The approval queue's tenant filter, amount sort and keys, and the card page's whole
conversation, in headless Chromium (the `live` server of test_console_browser.py).
Screenshots: build/screenshots/queue-*.png (and STEWARD_SCREENS, if set)."""

from __future__ import annotations

import os
from pathlib import Path

from .test_console_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS, Live, live  # noqa: F401
from .test_console_queue import refund


def test_a_reviewer_narrows_the_queue_to_a_tenant_by_amount(live: Live) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    runs = {}
    for amount, tenant in (("75", "acme"), ("330", "globex"), ("120", "acme")):
        body = {"agent": "support-desk", "input": refund(amount), "tags": {"tenant": tenant}}
        started = live.api("POST", "/v1/runs", json=body)
        assert started.status_code == 202, started.text
        runs[amount] = started.json()["id"]
    for run_id in runs.values():
        live.wait_for(run_id, "waiting")
    folders = [
        SHOTS,
        *([Path(os.environ["STEWARD_SCREENS"])] if "STEWARD_SCREENS" in os.environ else []),
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()

            def shoot(name: str) -> None:
                for folder in folders:
                    page.screenshot(path=folder / name, full_page=True)

            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/approvals")
            cards = page.locator("article.approval")
            expect(cards).to_have_count(3)

            page.fill("input[name=tag]", "tenant=acme")
            page.select_option("select[name=sort]", "amount")
            page.get_by_role("button", name="Show").click()
            expect(page).to_have_url(
                f"{live.url}/console/approvals?agent=&tool=&tag=tenant%3Dacme&sort=amount"
            )
            expect(cards).to_have_count(2)
            expect(cards.nth(0)).to_contain_text(runs["120"])
            expect(cards.nth(1)).to_contain_text(runs["75"])
            expect(page.locator("input[name=tag]")).to_have_value("tenant=acme")
            page.keyboard.press("j")
            page.keyboard.press("j")
            expect(cards.nth(1)).to_have_class("panel approval current")
            shoot("queue-1-tenant-by-amount.png")

            cards.nth(0).locator("h2 a.mono").click()
            conversation = page.locator("ol.conversation")
            expect(conversation).to_be_visible()
            turns = conversation.locator("li.turn")
            expect(page.locator("blockquote.request")).to_contain_text("Please refund $120")
            expect(turns.first).to_contain_text("Proposes lookup_order")
            expect(turns.last).to_contain_text("Proposes the held call issue_refund")
            expect(conversation.locator("li.turn-tool")).to_contain_text("lookup_order returned")
            shoot("queue-2-card-conversation.png")
        finally:
            browser.close()
