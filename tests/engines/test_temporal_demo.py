"""The demo end to end on Temporal: the same loop, the same outcome table as the
embedded engine, every event in steward's journal, the audit chain intact."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from steward.demo.job import DemoReport, run_demo
from steward.demo.tools import SYSTEMS_ENV
from steward.runtime import AgentRuntime, RunResult
from steward.store import Database, Journal
from steward.store.audit import query_events

TICKETS = 40


def table(report: DemoReport) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Per ticket: its outcome bucket, reason code and denials (the demo's table, by run)."""
    return sorted((t.id, report.bucket(r), r.reason_code, r.denials) for t, r in report.results)


@pytest.mark.parametrize("multi_agent", [False, True], ids=["one-agent", "multi-agent"])
async def test_the_demo_outcome_table_is_identical_on_both_engines(
    temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multi_agent: bool
) -> None:
    """With `multi_agent`, each ticket is a run tree (triage and a specialist) driven
    inside its root's workflow."""
    from steward.engines.temporal.client import TemporalRuns, connect
    from steward.engines.temporal.worker import build_worker

    embedded_db = Database.open(f"sqlite:///{tmp_path / 'embedded.db'}")
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "embedded-systems.db"))
    try:
        embedded = await run_demo(
            embedded_db, systems=tmp_path / "embedded-systems.db", limit=TICKETS,
            multi_agent=multi_agent,
        )  # fmt: skip
        queued_embedded = len(query_events(embedded_db, type_prefix="run.queued", limit=1000))
    finally:
        embedded_db.close()

    db = Database.open(f"sqlite:///{tmp_path / 'temporal.db'}")
    journal = Journal(db)
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "temporal-systems.db"))
    client = await connect(temporal_address)
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    runs = TemporalRuns(client, db, journal, task_queue=queue)

    async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
        return await runs.run(agent, text, tags=tags)

    try:
        async with build_worker(client, db, journal, task_queue=queue):
            on_temporal = await run_demo(
                db, systems=tmp_path / "temporal-systems.db", limit=TICKETS,
                journal=journal, drive=drive, multi_agent=multi_agent,
            )  # fmt: skip
        queued_temporal = len(query_events(db, type_prefix="run.queued", limit=1000))
    finally:
        journal.close()
        db.close()

    assert table(on_temporal) == table(embedded)
    assert on_temporal.buckets() == embedded.buckets()
    assert on_temporal.denials() == embedded.denials()
    assert len(on_temporal.buckets()) >= 3  # resolved, waiting, denied or escalated: a real mix
    assert on_temporal.audit is not None and on_temporal.audit.ok
    assert embedded.audit is not None
    # every event in the journal; on Temporal each run is on record, queued, before its
    # workflow starts (a worker takes it from there), on one process only when slots are full
    assert queued_temporal == TICKETS
    assert on_temporal.audit.checked - queued_temporal == embedded.audit.checked - queued_embedded
    if multi_agent:  # each ticket's tree, desk by desk, as on the embedded engine
        assert on_temporal.agents == embedded.agents  # runs, outcomes, denials per agent
        assert len(on_temporal.agents) > 2


@pytest.mark.parametrize("mode", [[], ["--multi-agent"]], ids=["one-agent", "multi-agent"])
def test_steward_demo_runs_on_temporal_from_the_command_line(
    temporal_address: str, tmp_path: Path, mode: list[str]
) -> None:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        STEWARD_DEMO_SYSTEMS=str(tmp_path / "systems.db"),
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from steward.cli.main import main; main()", "demo",
         "--db", f"sqlite:///{tmp_path / 'steward.db'}", "--limit", "12",
         "--engine", "temporal", "--temporal", temporal_address,
         "--task-queue", f"cli-{uuid.uuid4().hex[:8]}", *mode],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 tickets" in done.stdout
    assert "audit chain verified" in done.stdout
    if mode:  # a row per agent: the specialists ran, below triage
        assert "per agent" in done.stdout and "refunds" in done.stdout
