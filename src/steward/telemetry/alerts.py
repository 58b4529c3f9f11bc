"""Budget alerts: POST each `budget.threshold_crossed` event, as JSON, to its webhook.

A consumer of committed events; the HTTP call runs on its own daemon thread with a
timeout, so a slow or dead receiver never holds up the journal.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence

from steward.core.events import BudgetThresholdCrossed
from steward.telemetry.stream import Committed


class WebhookAlerts:
    def __init__(self, default_url: str | None = None, *, timeout: float = 5.0) -> None:
        self.default_url = default_url
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Committed]) -> None:
        for item in batch:
            event = item.event
            if not isinstance(event, BudgetThresholdCrossed):
                continue
            url = event.webhook or self.default_url
            if not url:
                continue
            body = {
                "type": "budget.threshold_crossed",
                "agent": event.agent,
                "run_id": item.run_id,
                "spent_usd": round(event.spent_usd, 6),
                "limit_usd": event.limit_usd,
                "threshold": event.threshold,
                "ts": item.ts,
            }
            thread = threading.Thread(target=self._post, args=(url, body), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _post(self, url: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            ok = False
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for alerts in flight (tests, and a CLI about to exit)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
