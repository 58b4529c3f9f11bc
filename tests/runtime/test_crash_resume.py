"""Kill a run with SIGKILL at every crash point, resume it, and check the promises:
no acknowledged event lost, no completed side effect repeated, the chain verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from steward.core.events import ModelResponded, RunFinished, ToolSucceeded
from steward.demo.systems import SupportSystems
from steward.store import Database
from steward.store.chain import verify_chain
from steward.store.runs import get_run, read_journal

WORKER = Path(__file__).with_name("crash_worker.py")
RUN_ID = "run_crash"


def _worker(db: Path, systems: Path, crash_at: int | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STEWARD_CRASH_AT"}
    if crash_at is not None:
        env["STEWARD_CRASH_AT"] = str(crash_at)
    return subprocess.run(
        [sys.executable, str(WORKER), str(db), str(systems), RUN_ID],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _check(db_path: Path, systems_path: Path) -> tuple[int, int]:
    db = Database.open(f"sqlite:///{db_path}")
    try:
        assert get_run(db, RUN_ID).status == "succeeded"
        journal = [e.event for e in read_journal(db, RUN_ID)]
        steps = sorted({e.step for e in journal if isinstance(e, ModelResponded)})
        assert steps == [0, 1, 2]
        succeeded = Counter(e.key for e in journal if isinstance(e, ToolSucceeded))
        assert len(succeeded) == 5, succeeded
        assert sum(isinstance(e, RunFinished) for e in journal) == 1
        with db.reader.connect() as connection:
            assert verify_chain(connection).ok
    finally:
        db.close()
    systems = SupportSystems.open(systems_path)
    refunds, resets = systems.count("refunds"), systems.count("password_resets")
    systems.close()
    return refunds, resets


@pytest.mark.slow
def test_sigkill_at_every_crash_point_then_resume(tmp_path: Path) -> None:
    crashed_at: list[int] = []
    for point in range(1, 40):
        case = tmp_path / f"case{point}"
        case.mkdir()
        db, systems = case / "steward.db", case / "systems.db"
        SupportSystems.create(systems).close()
        first = _worker(db, systems, point)
        if first.returncode == 0:
            assert first.stdout.strip() == "succeeded"
            break  # this point lies past the end of the run: every earlier one was covered
        assert first.returncode == -signal.SIGKILL, first.stderr
        crashed_at.append(point)
        second = _worker(db, systems, None)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "succeeded"
        refunds, resets = _check(db, systems)
        assert (refunds, resets) == (2, 1), f"crash point {point}: side effects repeated or lost"
        log = (
            (case / "systems.log").read_text().split("\n")
            if (case / "systems.log").exists()
            else []
        )
        effects = Counter(line.split()[1] for line in log if line)
        assert all(n <= 2 for n in effects.values()), effects
    assert len(crashed_at) >= 8, f"expected many crash points, got {crashed_at}"


@pytest.mark.slow
def test_crash_during_resume_too(tmp_path: Path) -> None:
    """Crash, then crash again while resuming, then finish: still exactly once."""
    db, systems = tmp_path / "steward.db", tmp_path / "systems.db"
    SupportSystems.create(systems).close()
    assert _worker(db, systems, 4).returncode == -signal.SIGKILL
    assert _worker(db, systems, 3).returncode == -signal.SIGKILL
    final = _worker(db, systems, None)
    assert final.returncode == 0 and final.stdout.strip() == "succeeded", final.stderr
    assert _check(db, systems) == (2, 1)
