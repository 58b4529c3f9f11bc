"""Telemetry from another process: the follower reads committed events in order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from steward.core.events import RunFinished, RunStarted, RunStatus, ToolSucceeded
from steward.store import Database, Journal
from steward.telemetry.follower import Follower
from steward.telemetry.stream import Committed


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []

    def __call__(self, batch: list[Committed]) -> None:
        self.seen.extend((item.run_id, item.type) for item in batch)


def _fill(db: Database, run_id: str, tools: int = 3) -> None:
    journal = Journal(db)
    journal.append(run_id, RunStarted("agent", "v1", "hi"))
    for n in range(tools):
        journal.append(run_id, ToolSucceeded(f"{run_id}:0:c{n}", "lookup", {"n": n}, 1.0, 1))
    journal.append(run_id, RunFinished(RunStatus.SUCCEEDED, "ok", 0.9, steps=1))
    journal.close()


def test_follows_committed_events_in_order(any_db: Database) -> None:
    _fill(any_db, "r1")
    recorder = Recorder()
    follower = Follower(any_db, [recorder], from_start=True, batch=2)
    while follower.poll():
        pass
    assert recorder.seen == [("r1", "run.started")] + [("r1", "tool.succeeded")] * 3 + [
        ("r1", "run.finished")
    ]
    _fill(any_db, "r2", tools=1)
    delivered = 0
    while batch := follower.poll():
        assert batch <= 2
        delivered += batch
    assert delivered == 3
    assert recorder.seen[-1] == ("r2", "run.finished")


def test_starts_at_the_head_unless_asked_to_replay(any_db: Database) -> None:
    _fill(any_db, "old")
    recorder = Recorder()
    follower = Follower(any_db, [recorder])
    assert follower.poll() == 0
    _fill(any_db, "new", tools=0)
    stop = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stop, 0.01))
    thread.start()
    deadline = time.time() + 5
    while len(recorder.seen) < 2 and time.time() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert recorder.seen == [("new", "run.started"), ("new", "run.finished")]


def test_a_failing_consumer_does_not_stop_the_others(sqlite_db: Database) -> None:
    _fill(sqlite_db, "r1", tools=0)

    def broken(_batch: list[Committed]) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    follower = Follower(sqlite_db, [broken, recorder], from_start=True)
    assert follower.poll() == 2
    assert follower.consumer_errors == 1 and len(recorder.seen) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_follow_command_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    db_path = tmp_path / "steward.db"
    _fill(Database.open(f"sqlite:///{db_path}"), "r1")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(STEWARD_DB=f"sqlite:///{db_path}", OTEL_SDK_DISABLED="true")
    command = [str(Path(sys.executable).with_name("steward")), "telemetry", "follow", "--from-start",
               "--metrics-port", str(port), "--interval", "0.05"]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        body = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=2
                ) as response:
                    body = response.read().decode()
                if 'agent_tasks_total{agent_name="agent",status="succeeded"} 1.0' in body:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert 'agent_tasks_total{agent_name="agent",status="succeeded"} 1.0' in body
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped after 5 events" in out
