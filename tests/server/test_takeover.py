"""A replica that dies is not restarted: a live replica's sweep takes over its runs.

Two `steward serve` replicas over one PostgreSQL database, as real processes. A drives a
run and is killed (SIGKILL, or its own crash point); PostgreSQL frees A's leases with
its session, and B, which started before the run existed (its start-up recovery saw
nothing), finishes the run within a few sweep intervals: the refund happens once, the
chain verifies. A run a live replica drives is never taken from it by a sweep."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.runs import list_runs, read_journal
from steward.testing.served import (
    HOLD_ENV,
    ServedProcess,
    chain_verifies,
    crash_desk_spec,
    refunds_by_run,
)

from .served import STEWARD

SMALL_REFUND = "Please refund $20 on order #10114, the strap broke."  # autonomous
SWEEP = 0.3  # B's sweep interval (seconds)
TAKEOVER = 15.0  # how long B may take to finish a dead replica's run (2 shared CPUs)


@dataclass
class Pair:
    a: ServedProcess
    b: ServedProcess
    db: Database
    hold: Path
    admin: str

    def start(self, on: ServedProcess, text: str) -> str:
        status, body = on.call(
            "POST", "/v1/runs", self.admin, {"agent": "support-desk", "input": text}
        )
        assert status == 202, body
        return str(body["id"])

    def status(self, on: ServedProcess, run_id: str) -> str:
        status, body = on.call("GET", f"/v1/runs/{run_id}", self.admin)
        assert status == 200, body
        return str(body["status"])

    def wait_for(self, on: ServedProcess, run_id: str, *states: str, timeout: float) -> float:
        """Poll until the run is in one of `states`; the seconds it took."""
        began = time.monotonic()
        while (now := self.status(on, run_id)) not in states:
            assert time.monotonic() - began < timeout, f"run {run_id} is {now}, not {states}"
            time.sleep(0.05)
        return time.monotonic() - began

    def types(self, run_id: str) -> list[str]:
        return [entry.type for entry in read_journal(self.db, run_id)]

    def tool_events(self, run_id: str, type_: str, tool: str) -> list[Any]:
        return [
            e.event
            for e in read_journal(self.db, run_id)
            if e.type == type_ and getattr(e.event, "tool", None) == tool
        ]


@pytest.fixture
def pair(postgres_db: Database, tmp_path: Path) -> Iterator[Pair]:
    """B serving (recovering at start, sweeping every SWEEP seconds); A not started."""
    spec = tmp_path / "desk.yaml"
    spec.write_text(crash_desk_spec(max_concurrent_runs=4))
    systems, hold = tmp_path / "systems.db", tmp_path / "hold"
    a = ServedProcess(postgres_db.url, spec, systems, tmp_path / "a.log")
    b = ServedProcess(
        postgres_db.url, spec, systems, tmp_path / "b.log", args=("--sweep-seconds", str(SWEEP))
    )
    admin = create_key(postgres_db, name="ops", role=Role.ADMIN, by="test")[1]
    try:
        b.start(**{HOLD_ENV: str(hold)})
        yield Pair(a, b, postgres_db, hold, admin)
    finally:
        hold.unlink(missing_ok=True)
        a.kill()
        b.kill()
    assert chain_verifies(postgres_db)


@pytest.mark.slow
def test_a_live_replica_finishes_the_run_of_a_replica_killed_mid_run(pair: Pair) -> None:
    """A holds a run mid-tool and is SIGKILLed, never to return: B's sweep takes the
    freed lease and finishes the run, no restart of anything."""
    pair.a.start(**{HOLD_ENV: str(pair.hold)})
    pair.hold.touch()
    run_id = pair.start(pair.a, "hold the line")
    pair.wait_for(pair.a, run_id, "running", timeout=30)
    time.sleep(3 * SWEEP)  # B sweeps meanwhile and leaves A's run alone
    assert "run.resumed" not in pair.types(run_id)
    pair.a.kill()
    pair.hold.unlink()
    took = pair.wait_for(pair.b, run_id, "succeeded", timeout=TAKEOVER)
    print(f"\na dead replica's run finished on the live one {took:.2f} s after the kill")
    types = pair.types(run_id)
    assert types.count("run.resumed") == 1, types
    assert types.count("run.finished") == 1, types
    assert len(pair.tool_events(run_id, "tool.succeeded", "hold")) == 1  # A's never returned


@pytest.mark.slow
def test_a_keyed_write_a_dead_replica_left_unrecorded_happens_once(pair: Pair) -> None:
    """A dies between the refund's return and its record (its own SIGKILL at a crash
    point): B's sweep resumes the run, the keyed retry finds the first refund."""
    pair.a.start(STEWARD_CRASH_AT="tool.after:2")  # lookup_order, then issue_refund
    with contextlib.suppress(OSError):  # A may die before it answers
        pair.start(pair.a, SMALL_REFUND)
    pair.a.wait(timeout=30)  # it killed itself
    status, listed = pair.b.call("GET", "/v1/runs", pair.admin)
    assert status == 200, listed
    [run_id] = [run["id"] for run in listed["items"]]
    assert refunds_by_run(pair.a.systems)[run_id] == 1  # the effect happened
    assert pair.tool_events(run_id, "tool.succeeded", "issue_refund") == []  # unrecorded
    pair.wait_for(pair.b, run_id, "succeeded", timeout=TAKEOVER)
    assert refunds_by_run(pair.a.systems)[run_id] == 1  # and did not happen again
    [done] = pair.tool_events(run_id, "tool.succeeded", "issue_refund")
    assert done.result["duplicate"] is True
    assert pair.types(run_id).count("run.resumed") == 1


@pytest.mark.slow
def test_a_sweep_leaves_alone_the_runs_a_live_replica_drives(pair: Pair) -> None:
    """While A drives runs (held mid-tool), B sweeps many
    times and takes none: each finishes on A with one activation."""
    pair.a.start(**{HOLD_ENV: str(pair.hold)})
    pair.hold.touch()
    runs = [pair.start(pair.a, "hold the line") for _ in range(2)]
    for run_id in runs:
        pair.wait_for(pair.a, run_id, "running", timeout=30)
    time.sleep(8 * SWEEP)
    pair.hold.unlink()
    for run_id in runs:
        pair.wait_for(pair.a, run_id, "succeeded", timeout=30)
        types = pair.types(run_id)
        assert "run.resumed" not in types, types
        assert len(pair.tool_events(run_id, "tool.succeeded", "hold")) == 1


@pytest.mark.slow
def test_a_sweep_leaves_alone_a_run_the_command_line_drives(pair: Pair) -> None:
    """`steward run` on the same PostgreSQL database holds its run's lease while it
    drives it: B's sweeps, many while the run's tool holds, never take it over."""
    pair.hold.touch()
    command = subprocess.Popen(
        [str(STEWARD), "run", str(pair.b.spec), "--input", "hold the line"],
        env=pair.b.env(**{HOLD_ENV: str(pair.hold)}), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (found := list_runs(pair.db)):
            assert time.monotonic() < deadline and command.poll() is None, "no run started"
            time.sleep(0.05)
        [run] = found
        time.sleep(8 * SWEEP)
        pair.hold.unlink()
        out, _ = command.communicate(timeout=30)
        assert command.returncode == 0, out
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    types = pair.types(run.id)
    assert "run.resumed" not in types, types
    assert types.count("run.finished") == 1, types
    assert len(pair.tool_events(run.id, "tool.succeeded", "hold")) == 1


EXTERNAL_SPEC = """\
name: outside
model: external
tools: [lookup_order]
decision_authority:
  autonomous: [lookup_order]
"""


async def test_a_sweep_leaves_a_run_its_own_program_drives_and_asks_once(
    postgres_db: Database, tmp_path: Path
) -> None:
    """A run of an agent with `model: external` is driven by its program (steward.Run),
    which holds no lease: a sweep that finds it (its agent not loaded by this server)
    does not drive it, and does not ask about that agent version's runs again."""
    import steward
    from steward.server.service import RunService
    from steward.store import Journal

    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "outside.yaml").write_text(EXTERNAL_SPEC, encoding="utf-8")
    async with steward.open(postgres_db.url, specs=folder) as st:
        run = await st.start_run("outside", "where is order 10056?")
        journal = Journal(postgres_db)
        service = RunService(postgres_db, journal, {})
        try:
            assert await service.take_over(grace_seconds=0) == [run.id]
            await service.wait_idle()
            assert await service.take_over(grace_seconds=0) == []
        finally:
            await service.shutdown(0)
            journal.close()
        types = [entry.type for entry in read_journal(postgres_db, run.id)]
        assert "run.resumed" not in types and "run.finished" not in types, types
