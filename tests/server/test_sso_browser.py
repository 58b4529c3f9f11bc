"""Single sign-on in a real headless Chromium: a reviewer clicks "Sign in with single
sign-on", the loopback OpenID provider (on `localhost`, another site than the console on
127.0.0.1, so the redirect back is cross-site as in production) signs them in, and they
approve a held refund as themselves; a person whose groups are not mapped gets a clear
refusal. Screenshots go to build/screenshots/sso-*.png (and STEWARD_SCREENS, if set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from steward.cli.serve import DEMO_SPEC
from steward.demo.tools import SYSTEMS_ENV
from steward.security.keys import Role
from steward.security.sso import SsoConfig, parse_roles
from steward.server import create_app, load_agents
from steward.store import Database
from steward.store.approvals import list_approvals
from steward.store.keys import create_key

from .oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    free_socket,
    running_provider,
    serving,
)
from .served import LARGE_REFUND
from .test_console_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS, _browser_or_skip

ROSA = {"sub": "u-rosa", "preferred_username": "rosa", "groups": ["payments-ops"]}
SAM = {"sub": "u-sam", "preferred_username": "sam", "groups": ["marketing"]}


@dataclass
class Console:
    url: str
    db: Database
    admin: str
    provider: Provider

    def shots(self) -> list[Path]:
        extra = os.environ.get("STEWARD_SCREENS")
        return [SHOTS, *([Path(extra)] if extra else [])]


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    _browser_or_skip()
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    admin = create_key(db, name="ada", role=Role.ADMIN, by="test")[1]
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with running_provider(host="localhost") as provider:
            sso = SsoConfig(
                issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                redirect_url=f"{base}/console/sso/callback",
                roles=parse_roles("payments-ops=reviewer,auditors=viewer"),
            )  # fmt: skip
            app = create_app(url, load_agents([DEMO_SPEC]), sso=sso)
            with serving(app, sock):
                yield Console(base, db, admin, provider)
    finally:
        db.close()


def test_a_reviewer_signs_in_by_sso_and_approves_in_the_browser(console: Console) -> None:
    from playwright.sync_api import expect, sync_playwright

    auth = {"Authorization": f"Bearer {console.admin}"}
    started = httpx.post(f"{console.url}/v1/runs", headers=auth, timeout=10,
                         json={"agent": "support-desk", "input": LARGE_REFUND})  # fmt: skip
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    for folder in console.shots():
        folder.mkdir(parents=True, exist_ok=True)

    def shoot(page: object, name: str) -> None:
        for folder in console.shots():
            page.screenshot(path=folder / name, full_page=True)  # type: ignore[attr-defined]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()

            console.provider.person = SAM  # first, someone whose groups give no access
            page.goto(f"{console.url}/console/approvals")
            expect(page.get_by_role("link", name="Sign in with single sign-on")).to_be_visible()
            shoot(page, "sso-1-sign-in.png")
            page.get_by_role("link", name="Sign in with single sign-on").click()
            refusal = page.locator(".flash-error")
            expect(refusal).to_contain_text("You signed in as sam, but none of your groups")
            expect(page.locator(".topbar .who")).to_have_count(0)
            shoot(page, "sso-2-no-access.png")

            console.provider.person = ROSA
            page.get_by_role("link", name="Sign in with single sign-on").click()
            expect(page).to_have_url(f"{console.url}/console/approvals")
            expect(
                page.get_by_text("Signed in as rosa (reviewer) by single sign-on.")
            ).to_be_visible()
            expect(page.locator(".topbar .who")).to_have_text("rosa")
            cookie = next(c for c in context.cookies() if c["name"] == "steward_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            card = page.locator("article.approval")
            expect(card).to_contain_text("issue_refund")
            shoot(page, "sso-3-signed-in-queue.png")
            card.locator("input[name=comment]").first.fill("Checked the carrier's photo.")
            card.get_by_role("button", name="Approve", exact=True).click()
            expect(page.get_by_text(f"Approved issue_refund for run {run_id}.")).to_be_visible()
            shoot(page, "sso-4-approved.png")

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_text("Signed out.")).to_be_visible()
            page.goto(f"{console.url}/console/runs")
            expect(page).to_have_url(f"{console.url}/console/sign-in?next=/console/runs")
        finally:
            browser.close()
    decided = [a for a in list_approvals(console.db, "approved", 10) if a.run_id == run_id]
    assert [a.decided_by for a in decided] == ["reviewer:rosa"]
