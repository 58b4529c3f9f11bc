"""Alerts: POST each `budget.threshold_crossed` and `monitor.alarm` (drift) event, as
JSON, to its webhook (the event's own, else the default: STEWARD_ALERT_WEBHOOK).

A consumer of committed events; the HTTP call runs on its own daemon thread with a
timeout, so a slow or dead receiver never holds up the journal. A connection error or a
5xx answer is retried (`attempts` in all, capped exponential backoff with jitter,
core/backoff.py); a 4xx is the receiver refusing the body, not retried.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from steward.core.backoff import backoff_delay
from steward.core.events import BudgetThresholdCrossed, DriftAlarmed
from steward.telemetry.stream import Committed


class WebhookAlerts:
    def __init__(
        self,
        default_url: str | None = None,
        *,
        timeout: float = 5.0,
        attempts: int = 4,
        backoff_base: float = 0.25,
    ) -> None:
        self.default_url = default_url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.sent = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Committed]) -> None:
        for item in batch:
            found = _alert(item)
            if found is None:
                continue
            url, body = found
            url = url or self.default_url
            if not url:
                continue
            thread = threading.Thread(target=self._post, args=(url, body), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _post(self, url: str, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        ok = False
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(
                url, data=data, headers={"Content-Type": "application/json"}, method="POST"
            )
            retry = True
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    ok = 200 <= response.status < 300
            except urllib.error.HTTPError as exc:
                retry = exc.code >= 500
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if ok or not retry or attempt == self.attempts:
                break
            time.sleep(backoff_delay(attempt, self.backoff_base, cap=5.0))
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


def _alert(item: Committed) -> tuple[str | None, dict[str, Any]] | None:
    """(the event's own webhook, the JSON body) for an alerting event, else None."""
    event = item.event
    if isinstance(event, BudgetThresholdCrossed):
        return event.webhook, {
            "type": "budget.threshold_crossed",
            "agent": event.agent,
            "run_id": item.run_id,
            "spent_usd": round(event.spent_usd, 6),
            "limit_usd": event.limit_usd,
            "threshold": event.threshold,
            "ts": item.ts,
        }
    if isinstance(event, DriftAlarmed):
        return event.webhook, {
            "type": "monitor.alarm",
            "agent": event.agent,
            "version": event.agent_version,
            "metric": event.metric,
            "chart": event.chart,
            "direction": event.direction,
            "statistic": round(event.statistic, 6),
            "limit": round(event.limit, 6),
            "baseline": event.baseline,
            "recent": event.recent,
            "observations": event.observations,
            "previous_version": event.previous_version,
            "rollback": f"steward agents rollback {event.agent} --label production"
            if event.previous_version
            else "",
            "ts": item.ts,
        }
    return None
