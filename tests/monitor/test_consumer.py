"""The drift monitor over a real journal: metrics per agent and version from committed
events, an alarm as a journal event, a Prometheus series and a webhook, and state that
survives a restart (saved, then caught up from the journal)."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select

from steward.core.events import (
    DriftAlarmed,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    decode_event,
)
from steward.monitor import DriftMonitor, agent_monitors
from steward.monitor import observations as observations_module
from steward.store import Database, Journal
from steward.store.feedback import give_feedback
from steward.store.schema import events, monitor_cursor, monitor_state
from steward.telemetry.alerts import WebhookAlerts
from steward.telemetry.metrics import MetricsConsumer

from .conftest import Loopback
from .streams import Clock, monitors, one_run


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def test_every_metric_is_charted_per_version_from_committed_events(db: Database) -> None:
    journal = Journal(db)
    monitor = DriftMonitor(db, journal, monitors())
    clock, rng = Clock(), random.Random(1)
    ids = [one_run(journal, clock, rng) for _ in range(60)]
    ids += [one_run(journal, clock, rng, version="v2") for _ in range(10)]
    journal.flush_sync()
    for i, run_id in enumerate(ids[:30]):
        verdict = "correct" if i % 5 else "incorrect"
        give_feedback(db, run_id, verdict=verdict, by="ann", correction="x",
                      on_commit=journal.publish)  # fmt: skip
    one_run(journal, clock, rng, agent="other")  # not monitored: ignored
    journal.close()
    monitor.close()

    view = agent_monitors(db, "desk")
    shown = {m.metric: m for m in view.metrics}
    assert list(shown) == [
        "accuracy", "confidence", "escalation_rate", "denial_rate", "latency", "cost"
    ]  # fmt: skip
    latency = shown["latency"].segments
    assert [s.version for s in latency] == ["v1", "v2"]
    assert latency[0].warming is False and latency[0].observations == 20
    assert latency[0].baseline == pytest.approx(2.0, rel=0.1)
    assert latency[1].warming is True and latency[1].warm_count == 10
    assert latency[1].previous_version == "v1"
    assert shown["cost"].segments[0].chart == "ewma"
    accuracy = shown["accuracy"].segments[0]
    assert accuracy.version == "v1" and accuracy.baseline == pytest.approx(0.8)
    assert agent_monitors(db, "other").metrics == []
    assert monitor.errors == 0


def test_an_alarm_is_a_journal_event_a_metric_and_a_webhook(
    db: Database, receiver: Loopback
) -> None:
    """v1 runs in control, v2 takes twice as long: the latency chart of v2 signals. The
    receiver answers 503 first: the alert is retried (core/backoff.py) and delivered."""
    registry = CollectorRegistry()
    journal = Journal(db)
    monitor = DriftMonitor(db, journal, monitors(receiver.url), registry=registry)
    monitor.start(interval=0.02)  # following the journal on its thread, as a server does
    metrics = MetricsConsumer(registry)
    alerts = WebhookAlerts(backoff_base=0.01)
    for consumer in (metrics, alerts):
        journal.subscribe(consumer)
    clock, rng = Clock(), random.Random(2)
    for _ in range(60):
        one_run(journal, clock, rng)
    for _ in range(40):
        one_run(journal, clock, rng, version="v2")  # v2's warm-up
    for _ in range(60):
        one_run(journal, clock, rng, version="v2", latency=4.0)
    journal.flush_sync()
    journal.close()
    monitor.close()
    alerts.wait()

    latency = [a for a in monitor.alarms if a.metric == "latency"]
    assert latency and latency[0].agent_version == "v2" and latency[0].direction == "up"
    assert latency[0].previous_version == "v1"
    assert latency[0].recent > 1.5 * latency[0].baseline
    with db.reader.connect() as connection:
        rows = connection.execute(
            select(events.c.run_id, events.c.data).where(events.c.type == "monitor.alarm")
        ).all()
    journaled = [decode_event(r.data) for r in rows]
    assert all(r.run_id is None for r in rows)
    assert latency[0] in journaled and all(isinstance(e, DriftAlarmed) for e in journaled)
    labels = {"agent_name": "desk", "version": "v2", "metric": "latency", "direction": "up"}
    assert registry.get_sample_value("agent_drift_alarm_total", labels) == len(latency)
    gauge = {"agent_name": "desk", "version": "v2", "metric": "latency"}
    assert registry.get_sample_value("agent_drift_limit", gauge) == pytest.approx(latency[0].limit)
    bodies = receiver.handler.bodies
    assert len(bodies) == len(journaled) + 1  # the first attempt was answered 503
    sent = sorted(json.dumps(b, sort_keys=True) for b in bodies)
    assert len(set(sent)) == len(journaled)  # one alert was retried: posted twice
    posted = [b for b in bodies if b["metric"] == "latency"]
    assert posted[-1]["rollback"] == "steward agents rollback desk --label production"
    assert posted[-1]["version"] == "v2" and posted[-1]["previous_version"] == "v1"
    assert alerts.failed == 0 and alerts.sent == len(journaled)
    view = agent_monitors(db, "desk")
    assert view.alarmed and view.alarms[0].rollback.startswith("steward agents rollback desk")


def _states(db: Database) -> dict[tuple[str, str, str], dict[str, Any]]:
    from steward.store.monitors import load_monitor_rows

    return {(r.agent, r.version, r.metric): r.state for r in load_monitor_rows(db)}


def test_state_survives_a_restart_and_catches_up_on_what_it_missed(any_db: Database) -> None:
    """Monitor A folds 50 runs and stops (saving its charts with the id of the last event
    it folded); 30 more runs commit while no monitor runs; monitor B loads A's state and
    folds exactly those 30 runs' events. B's charts are those of a monitor that saw all."""
    db = any_db
    clock, rng = Clock(), random.Random(3)
    journal = Journal(db)
    first = DriftMonitor(db, journal, monitors())
    first.start(interval=0.02)
    for _ in range(50):
        one_run(journal, clock, rng)
    journal.close()
    first.close()
    after_first = _states(db)

    journal = Journal(db)  # nobody watching
    for _ in range(30):
        one_run(journal, clock, rng)
    journal.close()

    second = DriftMonitor(db, None, monitors())
    second.load()
    assert second.drain() == 30 * 4  # started, model, decision, finished
    second.close()
    restarted = _states(db)
    assert restarted != after_first

    # the reference: a fresh monitor over the whole journal (nothing saved)
    with db.writer.begin() as connection:
        connection.execute(delete(monitor_state))
        connection.execute(delete(monitor_cursor))
    reference = DriftMonitor(db, None, monitors())
    reference.load()
    assert reference.drain() == 80 * 4
    reference.close()
    assert _states(db) == restarted
    latency = restarted[("desk", "v1", "latency")]
    assert latency["observations"] == 80 - 40


def test_catching_up_is_bounded(db: Database) -> None:
    clock, rng = Clock(), random.Random(4)
    journal = Journal(db)
    for _ in range(30):
        one_run(journal, clock, rng)
    journal.close()
    monitor = DriftMonitor(db, None, monitors(), max_catchup=40)
    monitor.load()
    assert monitor.drain() == 40  # the last 10 runs' events
    monitor.close()
    latency = _states(db)[("desk", "v1", "latency")]
    assert len(latency["warm"]) == 10


def test_an_alarm_is_raised_once_across_a_crash(db: Database) -> None:
    """The alarm, the charts and the cursor commit together: a monitor that dies right
    after an alarm (nothing else saved) and starts again does not raise it twice."""
    clock, rng = Clock(), random.Random(8)
    journal = Journal(db)
    for _ in range(60):
        one_run(journal, clock, rng)
    for _ in range(40):
        one_run(journal, clock, rng, latency=6.0)
    journal.close()
    crashed = DriftMonitor(db, None, monitors(), save_every=1e9)
    crashed.load()
    crashed.drain()  # no close(): what was not saved with an alarm is lost
    assert [a.metric for a in crashed.alarms].count("latency") == 1
    again = DriftMonitor(db, None, monitors())
    again.load()
    again.drain()
    again.close()
    assert [a.metric for a in again.alarms].count("latency") == 0
    with db.reader.connect() as connection:
        rows = connection.execute(select(events.c.data).where(events.c.type == "monitor.alarm"))
        journaled = [decode_event(r.data) for r in rows]
    assert [a.metric for a in journaled if isinstance(a, DriftAlarmed)].count("latency") == 1


def test_live_events_are_folded_whatever_their_order_in_time(db: Database) -> None:
    """Runs finishing together are appended in one order with timestamps taken just
    before: a finish whose ts is a little older than the last one folded still counts
    (only a catch-up after a restart skips what a series folded before)."""
    monitor = DriftMonitor(db, None, monitors())
    clock = Clock()
    journal = Journal(db)
    for n in range(2):
        journal.append(f"run_{n:012x}", RunStarted("desk", "v1", "hi"), clock.now)
    journal.append("run_000000000001", RunFinished(RunStatus.SUCCEEDED, "ok", 0.9), clock.now + 2)
    journal.append("run_000000000000", RunFinished(RunStatus.SUCCEEDED, "ok", 0.9), clock.now + 1)
    journal.close()
    monitor.close()  # folds what committed
    assert len(_states(db)[("desk", "v1", "latency")]["warm"]) == 2


def test_runs_of_unmonitored_agents_cost_no_store_reads(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = observations_module.get_run
    monkeypatch.setattr(observations_module, "get_run", lambda d, r: reads.append(r) or real(d, r))
    monitor = DriftMonitor(db, None, monitors())
    journal = Journal(db)
    clock, rng = Clock(), random.Random(6)
    for _ in range(5):
        one_run(journal, clock, rng, agent="other")
    journal.append("run_0000000000ff", RunResumed("resumed", agent="other"), clock.tick(1))
    journal.append("run_0000000000ff", RunFinished(RunStatus.SUCCEEDED), clock.tick(1))
    journal.close()
    monitor.close()
    assert reads == []
    assert monitor.errors == 0


def test_runs_committed_by_another_process_are_charted(db: Database) -> None:
    """The monitor reads committed rows from the store, not its own process's stream: a
    run written through another journal (a CLI `steward run`) counts while it follows."""
    own = Journal(db)
    monitor = DriftMonitor(db, own, monitors())
    monitor.start(interval=0.02)
    other = Journal(db)  # another process's journal over the same database
    clock, rng = Clock(), random.Random(12)
    for _ in range(5):
        one_run(other, clock, rng)
    other.close()
    deadline = time.monotonic() + 10
    while monitor.cursor < 5 * 4:
        assert time.monotonic() < deadline, "the monitor did not follow the journal"
        time.sleep(0.02)
    own.close()
    monitor.close()
    assert len(_states(db)[("desk", "v1", "latency")]["warm"]) == 5
