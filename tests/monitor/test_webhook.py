"""Alert webhooks (telemetry/alerts.py) for drift alarms: retried on a connection error or
a 5xx with backoff, never on a 4xx (the receiver refused the body)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest

from steward.core.events import DriftAlarmed
from steward.telemetry.alerts import WebhookAlerts

from .conftest import Loopback


@dataclass(frozen=True)
class Item:
    run_id: str | None
    ts: float
    type: str
    event: object


def alarm(url: str) -> Item:
    event = DriftAlarmed("desk", "v2", "latency", "cusum", "up", 6.1, 5.7, 2.0, 3.1, 40,
                         "v1", url)  # fmt: skip
    return Item(None, 1.0, "monitor.alarm", event)


@pytest.mark.parametrize(
    ("answers", "posts", "sent"),
    [([503, 502], 3, 1), ([400], 1, 0), ([500, 500, 500, 500], 4, 0)],
    ids=["5xx-retried", "4xx-not-retried", "gives-up-after-attempts"],
)
def test_retries(receiver: Loopback, answers: list[int], posts: int, sent: int) -> None:
    receiver.handler.answers = list(answers)
    alerts = WebhookAlerts(attempts=4, backoff_base=0.01)
    alerts([alarm(receiver.url)])
    alerts.wait()
    assert len(receiver.handler.bodies) == posts
    assert (alerts.sent, alerts.failed) == (sent, 1 - sent)
    body = receiver.handler.bodies[-1]
    assert body["type"] == "monitor.alarm" and body["metric"] == "latency"
    assert body["rollback"] == "steward agents rollback desk --label production"


def test_a_dead_receiver_is_retried_then_counted_failed() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    alerts = WebhookAlerts(attempts=3, backoff_base=0.01, timeout=1.0)
    alerts([alarm(f"http://127.0.0.1:{port}/hook")])
    alerts.wait()
    assert (alerts.sent, alerts.failed) == (0, 1)


def test_the_default_url_serves_alarms_without_their_own(receiver: Loopback) -> None:
    receiver.handler.answers = []
    alerts = WebhookAlerts(receiver.url)
    own_less = DriftAlarmed("desk", "v2", "cost", "ewma", "up", 1.0, 0.9, 0.01, 0.02, 9)
    alerts([Item(None, 1.0, "monitor.alarm", own_less)])
    alerts.wait()
    assert [b["metric"] for b in receiver.handler.bodies] == ["cost"]
    assert receiver.handler.bodies[0]["rollback"] == ""  # no earlier version to return to
