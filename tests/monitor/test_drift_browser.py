"""The drift page in a real headless Chromium (Debian's, driven by Playwright): a served
agent that declares monitors, whose second version's latency rose, shows each metric's
control chart as inline SVG with its limits, the version change, the alarm marker and
the rollback command. Screenshots go to build/screenshots/ (and /work/screens/drift when
that directory exists). Skipped without chromium, except under CI."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from server.test_console_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS, _browser_or_skip
from steward.monitor import DriftMonitor
from steward.runtime import build_agent
from steward.security.keys import Role
from steward.server import create_app
from steward.spec import load_spec
from steward.store import Database, Journal
from steward.store.feedback import give_feedback
from steward.store.keys import create_key
from steward.testing import ScriptedModel

from .streams import SPEC, Clock, monitors, one_run

EXTRA_SHOTS = Path("/work/screens/drift")


@dataclass
class Served:
    url: str
    token: str


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    _browser_or_skip()
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    db = Database.open(url, create=True)
    token = create_key(db, name="ada", role=Role.ADMIN, by="test")[1]
    journal = Journal(db)  # the history: v1 in control, then v2 twice as slow
    monitor = DriftMonitor(db, journal, monitors(arl0=2000, warmup=100))
    clock, rng = Clock(time.time() - 2 * 86400), random.Random(11)
    ids = [one_run(journal, clock, rng) for _ in range(300)]
    journal.flush_sync()
    for i, run_id in enumerate(ids[:60]):
        verdict = "incorrect" if i % 7 == 0 else "correct"
        give_feedback(db, run_id, verdict=verdict, by="ann", correction="no",
                      on_commit=journal.publish)  # fmt: skip
    for _ in range(100):
        one_run(journal, clock, rng, version="a3f9c2d17e5b8a01")
    for _ in range(80):
        one_run(journal, clock, rng, version="a3f9c2d17e5b8a01", latency=3.4)
    journal.close()
    monitor.close()
    spec = tmp_path / "desk.yaml"
    spec.write_text(SPEC.replace("arl0: 200", "arl0: 2000").replace("warmup: 40", "warmup: 100"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(url, [build_agent(load_spec(spec), model=ScriptedModel([]))])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", token)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        db.close()
        assert not thread.is_alive(), "the server did not stop within 15 s"


def test_the_drift_page_shows_charts_limits_versions_and_the_alarm(served: Served) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(f"{served.url}/console/sign-in")
            page.fill("#token", served.token)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Agents").click()
            agent = page.locator("#agent-desk")
            expect(agent.locator(".drift-marker")).to_have_text("drift alarm")
            agent.screenshot(path=SHOTS / "drift-agents-marker.png")
            if EXTRA_SHOTS.is_dir():
                agent.screenshot(path=EXTRA_SHOTS / "agents-marker.png")
            agent.locator("a.drift-link").click()

            expect(page.get_by_role("heading", name="Drift monitors of desk")).to_be_visible()
            expect(page.locator("#drift-alarm")).to_be_visible()
            alarms = page.locator(".drift-alarms")
            expect(alarms).to_contain_text("latency")
            expect(alarms).to_contain_text("steward agents rollback desk --label production")
            latency = page.locator("#metric-latency svg.drift-chart")
            expect(latency).to_be_visible()
            assert latency.locator(".dc-limit").count() == 4  # ± limit for each version
            assert latency.locator(".dc-version").count() == 1  # v1 -> v2
            assert latency.locator(".dc-alarm").count() >= 1
            box = latency.bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 100
            assert page.locator("svg.drift-chart").count() == 6  # every declared metric
            assert page.locator("script[src^=http], link[href^=http]").count() == 0
            page.screenshot(path=SHOTS / "drift-page.png", full_page=True)
            page.locator("#metric-latency").screenshot(path=SHOTS / "drift-latency.png")
            if EXTRA_SHOTS.is_dir():
                page.screenshot(path=EXTRA_SHOTS / "drift-page.png", full_page=True)
                page.locator("#metric-latency").screenshot(path=EXTRA_SHOTS / "drift-latency.png")
        finally:
            browser.close()
