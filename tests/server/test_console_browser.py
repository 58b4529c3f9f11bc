"""The console in a real headless Chromium (Debian's, driven by Playwright; no browser
download): a reviewer signs in, approves a held refund from the queue and watches the run
succeed; screenshots of each page go to build/screenshots/.

Without chromium the test is skipped, except under CI (env `CI` set), where it fails."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from steward.cli.serve import DEMO_SPEC
from steward.demo import MULTI_AGENT_SPECS
from steward.demo.tools import SYSTEMS_ENV
from steward.security.keys import Role
from steward.server import create_app, load_agents
from steward.store import Database
from steward.store.keys import create_key

from .served import LARGE_REFUND

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking"]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WAIT_MS = 20_000


def _browser_or_skip() -> None:
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is None and not CHROMIUM.exists():
        problem = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run under CI: {problem}")
        pytest.skip(f"browser test skipped: {problem}")


@dataclass
class Live:
    url: str
    db: Database
    tokens: dict[str, str]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens['admin']}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def wait_for(self, run_id: str, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.api("GET", f"/v1/runs/{run_id}").json()["status"]) != state:
            assert time.monotonic() < deadline, f"run {run_id} is {status}, not {state}"
            time.sleep(0.05)


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """A real uvicorn server on a free loopback port, in a background thread."""
    yield from _serving(tmp_path, monkeypatch, [DEMO_SPEC])


@pytest.fixture
def live_desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The same, serving the multi-agent demo's triage and its specialists."""
    yield from _serving(tmp_path, monkeypatch, list(MULTI_AGENT_SPECS))


def _serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, specs: list[Path]) -> Iterator[Live]:
    _browser_or_skip()
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url)
    tokens = {
        "reviewer": create_key(db, name="rita", role=Role.REVIEWER, by="test")[1],
        "admin": create_key(db, name="ada", role=Role.ADMIN, by="test")[1],
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(url, load_agents(specs))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", db, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        db.close()
        assert not thread.is_alive(), "the server did not stop within 15 s"


def test_a_reviewer_approves_a_refund_in_the_browser(live: Live) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = live.api("POST", "/v1/runs", json={"agent": "support-desk", "input": LARGE_REFUND})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    live.wait_for(run_id, "waiting")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()

            page.goto(f"{live.url}/console/")
            expect(page).to_have_url(f"{live.url}/console/sign-in?next=/console/runs")
            page.screenshot(path=SHOTS / "1-sign-in.png")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Signed in as rita (reviewer).")).to_be_visible()
            expect(page.locator(".topbar .count")).to_have_text("1")
            page.screenshot(path=SHOTS / "2-runs.png", full_page=True)

            page.get_by_role("link", name=run_id).click()
            expect(page.get_by_text("This run is waiting for a person")).to_be_visible()
            expect(page.locator("#run-status")).to_have_text("waiting")
            expect(page.get_by_text("refreshing every 2 s")).to_be_visible()
            page.screenshot(path=SHOTS / "3-run-waiting.png")
            reason = page.locator("input[name=reason]")
            reason.fill("customer withdrew")  # the reload waits while a person types
            expect(page.get_by_text("refresh paused while you type")).to_be_visible()
            expect(reason).to_have_value("customer withdrew")
            reason.fill("")
            reason.blur()

            watcher = context.new_page()  # a second tab keeps the run page open
            watcher.goto(f"{live.url}/console/runs/{run_id}")
            page.get_by_role("link", name="Open the approval queue →").click()
            card = page.locator("article.approval")
            expect(card).to_contain_text("issue_refund")
            expect(card).to_contain_text('"amount_usd": 330.0')
            expect(card.locator(".countdown")).to_contain_text("in ")  # ticking countdown
            page.screenshot(path=SHOTS / "4-approval-queue.png", full_page=True)
            card.locator("input[name=comment]").first.fill("Photo of the box confirms it.")
            card.get_by_role("button", name="Approve", exact=True).click()
            expect(page.get_by_text(f"Approved issue_refund for run {run_id}.")).to_be_visible()
            expect(page.get_by_text("Nothing is waiting for a decision")).to_be_visible()

            # the watching tab reloads itself until the run has finished
            expect(watcher.locator("#run-status")).to_have_text("succeeded", timeout=WAIT_MS)
            expect(watcher.get_by_text("Outcome: succeeded")).to_be_visible()
            expect(watcher.locator(".timeline")).to_contain_text("approved")
            expect(watcher.locator(".timeline")).to_contain_text("Photo of the box confirms it.")
            watcher.screenshot(path=SHOTS / "5-run-timeline.png", full_page=True)
            watcher.screenshot(path=SHOTS / "5-run-timeline-viewport.png")  # what 1366x768 shows
            watcher.close()

            page.get_by_role("link", name="Audit").click()
            page.get_by_role("button", name="Verify chain").click()
            expect(page.locator("#verify-result")).to_contain_text("OK")
            expect(page.locator("#verify-result")).to_contain_text("events checked")
            page.screenshot(path=SHOTS / "6-audit-verify.png", full_page=True)

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_text("Signed out.")).to_be_visible()
            page.fill("#token", live.tokens["admin"])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Agents").click()
            agent = page.locator("#agent-support-desk")
            expect(agent.locator(".agent-state")).to_contain_text("enabled")
            expect(agent.get_by_role("button", name="Disable agent")).to_be_visible()
            page.screenshot(path=SHOTS / "7-agents.png", full_page=True)

            page.goto(f"{live.url}/console/runs/run_missing")
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            page.screenshot(path=SHOTS / "8-not-found.png")
        finally:
            browser.close()
    live.wait_for(run_id, "succeeded")


def test_a_run_tree_in_the_browser(live_desk: Live) -> None:
    """triage hands a $330 refund to the refunds desk, which waits for a person: the root's
    page shows the tree and links down to the child, whose page links back up to the
    root; approving from the queue (which shows the chain) finishes both."""
    from playwright.sync_api import expect, sync_playwright

    live = live_desk
    started = live.api("POST", "/v1/runs", json={"agent": "triage", "input": LARGE_REFUND})
    assert started.status_code == 202, started.text
    root = started.json()["id"]
    live.wait_for(root, "waiting")
    child = live.api("GET", f"/v1/runs/{root}/tree").json()["runs"][1]["id"]
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/runs/{root}")
            expect(page.get_by_text("This run is waiting for a person")).to_be_visible()
            tree = page.locator("#run-tree")
            expect(tree.locator(".tree-node")).to_have_count(2)
            expect(tree.locator(".tree-here")).to_contain_text("triage")
            expect(tree.locator(f"[data-run='{child}']")).to_contain_text("hop 1")
            expect(tree.locator(f"[data-run='{child}']")).to_contain_text("waiting")
            page.screenshot(path=SHOTS / "9-run-tree.png", full_page=True)

            tree.get_by_role("link", name="refunds").click()
            expect(page).to_have_url(f"{live.url}/console/runs/{child}")
            expect(page.locator("#delegated-by")).to_contain_text("hop 1")
            expect(page.locator("#run-tree .tree-here")).to_contain_text("refunds")
            page.get_by_role("link", name="Open the approval queue →").click()
            card = page.locator("article.approval")
            expect(card).to_contain_text("Delegated: triage → refunds")
            card.locator("input[name=comment]").first.fill("Photo of the box confirms it.")
            card.get_by_role("button", name="Approve", exact=True).click()
            expect(page.get_by_text("Nothing is waiting for a decision")).to_be_visible()

            page.goto(f"{live.url}/console/runs/{child}")
            page.locator("#delegated-by").get_by_role("link", name="triage").first.click()
            expect(page).to_have_url(f"{live.url}/console/runs/{root}")
            expect(page.locator("#run-status")).to_have_text("succeeded", timeout=WAIT_MS)
            expect(page.locator("#run-tree .tree-node .pill-green")).to_have_count(2)
            page.screenshot(path=SHOTS / "10-run-tree-done.png", full_page=True)
        finally:
            browser.close()


def test_a_reviewer_confirms_a_changed_order_in_the_browser(live: Live) -> None:
    """The card shows the request, the lookup, the rule and each argument's source; an
    edit that changes the order number comes back as a diff with the identifier flagged,
    and is approved only once its box is ticked. The answer names the order that ran."""
    from playwright.sync_api import expect, sync_playwright

    text = (
        "I was charged twice for the smartwatch on order #10056. Please refund the extra $219.18."
    )
    started = live.api("POST", "/v1/runs", json={"agent": "support-desk", "input": text})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    live.wait_for(run_id, "waiting")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/approvals")
            card = page.locator("article.approval")
            expect(card).to_contain_text("The request that started the run")
            expect(card).to_contain_text("charged twice for the smartwatch")
            expect(card.locator("details.led-up")).to_contain_text("lookup_order")
            expect(card.locator("table.args")).to_contain_text("user")
            card.screenshot(path=SHOTS / "9-approval-card.png")

            card.locator("details.edit summary").click()
            edited = '{"order_id": "10114", "amount_usd": 40, "reason": "partial"}'
            card.locator("textarea[name=arguments]").fill(edited)
            card.get_by_role("button", name="Approve with edits").click()
            card = page.locator("article.approval")
            expect(card.locator("[role=alert]")).to_contain_text("identifier 'order_id'")
            expect(card.locator("tr.identifier-changed")).to_contain_text("10114")
            card.screenshot(path=SHOTS / "10-approval-card-identifier-changed.png")
            card.locator("input[name=confirm][value=order_id]").check()
            card.get_by_role("button", name="Approve with edits").click()
            expect(
                page.get_by_text(f"Approved with edits issue_refund for run {run_id}")
            ).to_be_visible()
        finally:
            browser.close()
    live.wait_for(run_id, "succeeded")
    output = live.api("GET", f"/v1/runs/{run_id}").json()["output"]
    assert "#10114" in output and "10056" not in output, output


def test_the_queue_by_keyboard_and_bulk_reject(live: Live) -> None:
    """j moves to a card, a then Enter approves it; x ticks cards for one bulk rejection."""
    from playwright.sync_api import expect, sync_playwright

    runs = []
    for n in range(3):
        text = f"Please refund $100 on order #10056, attempt {n}."
        started = live.api("POST", "/v1/runs", json={"agent": "support-desk", "input": text})
        assert started.status_code == 202, started.text
        runs.append(started.json()["id"])
    for run_id in runs:
        live.wait_for(run_id, "waiting")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["reviewer"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/approvals")
            cards = page.locator("article.approval")
            expect(cards).to_have_count(3)
            page.keyboard.press("j")
            expect(cards.nth(0)).to_have_class("panel approval current")
            page.keyboard.press("a")
            expect(cards.nth(0).get_by_role("button", name="Approve", exact=True)).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.get_by_text(f"Approved issue_refund for run {runs[0]}.")).to_be_visible()
            expect(cards).to_have_count(2)
            page.keyboard.press("j")
            page.keyboard.press("x")
            page.keyboard.press("j")
            page.keyboard.press("x")
            expect(page.locator("input.pick:checked")).to_have_count(2)
            page.fill("#bulk input[name=comment]", "duplicate tickets")
            page.screenshot(path=SHOTS / "11-approval-queue-bulk.png", full_page=True)
            page.get_by_role("button", name="Reject ticked").click()
            expect(page.get_by_text("Rejected 2 request(s).")).to_be_visible()
            expect(page.get_by_text("Nothing is waiting for a decision")).to_be_visible()
        finally:
            browser.close()
    live.wait_for(runs[0], "succeeded")


def test_an_admin_promotes_diffs_and_rolls_back_in_the_browser(live: Live) -> None:
    """The agents page: promote an evaluated version through the form (a version with no
    passing evaluation is refused with the reason), see the label, open the diff between
    the two versions, roll back."""
    from playwright.sync_api import expect, sync_playwright

    from steward.spec.loader import load_spec_text
    from steward.store.evaluations import record_eval
    from steward.store.runs import save_agent_version

    loaded = live.api("GET", "/v1/agents/support-desk").json()["loaded_version"]
    text = DEMO_SPEC.read_text().replace("Be brief and accurate.", "Be brief, kind and accurate.")
    new = load_spec_text(text, "candidate.yaml").version
    save_agent_version(live.db, "support-desk", new, text)
    for version in (loaded, new):
        record_eval(live.db, agent="support-desk", version=version, suite="support-desk",
                    passed=version == new, required_passed=1, required_total=1,
                    scored_rate=None, summary="{}", by="ci")  # fmt: skip
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{live.url}/console/sign-in")
            page.fill("#token", live.tokens["admin"])
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"{live.url}/console/agents")
            agent = page.locator("#agent-support-desk")
            form = agent.locator("form.promote-form")
            form.locator("select[name=version]").select_option(loaded)
            form.get_by_role("button", name="Promote").click()
            expect(page.get_by_text("Not promoted:")).to_contain_text("failed")
            form = page.locator("#agent-support-desk form.promote-form")
            form.locator("select[name=version]").select_option(new)
            form.get_by_role("button", name="Promote").click()
            expect(page.get_by_text(f"support-desk production now runs {new}")).to_be_visible()
            label = page.locator("#label-support-desk-production")
            expect(label).to_contain_text(new)
            page.screenshot(path=SHOTS / "9-agent-labels.png", full_page=True)

            diff = page.locator("#agent-support-desk form.diff-form")
            diff.locator("select[name=old]").select_option(loaded)
            diff.locator("select[name=new]").select_option(new)
            diff.get_by_role("button", name="Show diff").click()
            expect(page.locator(".diff .diff-add")).to_contain_text("Be brief, kind and accurate.")
            expect(page.locator(".diff .diff-del")).to_contain_text("Be brief and accurate.")
            page.screenshot(path=SHOTS / "10-version-diff.png", full_page=True)
            page.go_back()
            page.reload()

            # an admin's override puts the loaded version first, then the rollback
            ok = live.api("POST", "/v1/agents/support-desk/promote",
                          json={"version": loaded, "override": True, "reason": "compare"})  # fmt: skip
            assert ok.status_code == 200, ok.text
            page.reload()
            page.locator("#label-support-desk-production").get_by_role(
                "button", name="Roll back"
            ).click()
            expect(
                page.get_by_text(f"support-desk production rolled back to {new}.")
            ).to_be_visible()
        finally:
            browser.close()
