"""A journal written by steward 0.1.0 (tests/data/journal-0.1.0.sqlite, made by
tests/data/make_golden_journal.py, never regenerated) still decodes, replays and verifies
with today's code: the migrations upgrade it, the chain verifies to the head on record,
every event decodes (old versions through their upcasters), the runs replay, and
re-appending its events to an empty store rebuilds the same chain and projections."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from steward.core.events import RunStatus, decode_event, event_type
from steward.runtime.history import RunHistory
from steward.store import Database
from steward.store.chain import PendingEvent, append_in_transaction, verify_chain
from steward.store.runs import read_journal
from steward.store.schema import approvals, cost_ledger, events, runs

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = sorted(DATA.glob("journal-*.sqlite"))
# the approvals columns the projections write (a decision is the approval service's)
PROJECTED_APPROVAL = ("id", "run_id", "call_id", "agent", "tool", "arguments", "call_hash",
                      "reason", "requested_at", "expires_at", "used_at")  # fmt: skip


@pytest.fixture(params=GOLDEN, ids=lambda p: p.stem)
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, dict]]:
    source: Path = request.param
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)  # the checked-in file is never written
    db = Database.open(f"sqlite:///{copy}", create=False)  # migrates it to today's schema
    yield db, json.loads(source.with_suffix(".json").read_text())
    db.close()


def test_there_is_a_golden_journal() -> None:
    assert GOLDEN, "tests/data/journal-*.sqlite is missing"


def test_the_chain_verifies_to_the_head_on_record(golden: tuple[Database, dict]) -> None:
    db, manifest = golden
    with db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok, report.problems
    assert report.checked == manifest["events"]
    assert report.head_hash == manifest["head_hash"]


def test_every_event_decodes(golden: tuple[Database, dict]) -> None:
    db, manifest = golden
    with db.reader.connect() as connection:
        rows = connection.execute(select(events).order_by(events.c.id)).all()
    decoded = [decode_event(r.data) for r in rows]
    assert [event_type(e) for e in decoded] == [r.type for r in rows]
    assert sorted({r.type for r in rows}) == manifest["types"]


def test_runs_replay_to_their_recorded_state(golden: tuple[Database, dict]) -> None:
    db, _ = golden
    with db.reader.connect() as connection:
        rows = connection.execute(select(runs)).all()
    assert len(rows) >= 4
    for row in rows:
        history = RunHistory()
        for entry in read_journal(db, row.id):
            history.apply(entry.event)
        assert history.started is not None and history.started.agent == row.agent
        assert history.finished is not None, row.id
        assert history.finished.status.value == row.status
        assert history.finished.output == row.output
    refunded = next(r for r in rows if r.input.startswith("Please refund order A-1001"))
    history = RunHistory()
    for entry in read_journal(db, refunded.id):
        history.apply(entry.event)
    assert refunded.status == RunStatus.SUCCEEDED.value
    (record,) = [c for c in history.calls.values() if c.approval_id]
    assert record.approval_used and record.started and record.outcome is not None
    assert record.outcome.result == {
        "refunded": 59.9, "order_id": "A-1001", "key": record.outcome.key,
    }  # fmt: skip


def test_replaying_into_an_empty_store_rebuilds_the_chain_and_projections(
    golden: tuple[Database, dict], tmp_path: Path
) -> None:
    db, manifest = golden
    with db.reader.connect() as connection:
        rows = connection.execute(select(events).order_by(events.c.id)).all()
        want_runs = sorted(connection.execute(select(runs)).all())
        want_costs = _costs(connection)
        want_approvals = _approvals(connection)
    fresh = Database.open(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        with fresh.writer.begin() as connection:
            append_in_transaction(
                connection,
                [
                    PendingEvent(r.run_id, r.type, r.ts, r.data.encode(), decode_event(r.data))
                    for r in rows
                ],
            )
        with fresh.reader.connect() as connection:
            report = verify_chain(connection)
            assert report.ok and report.head_hash == manifest["head_hash"]
            assert sorted(connection.execute(select(runs)).all()) == want_runs
            assert _costs(connection) == want_costs
            assert _approvals(connection) == want_approvals
    finally:
        fresh.close()


def _costs(connection: Connection) -> list[tuple]:
    columns = [c for c in cost_ledger.c if c.name != "id"]
    return sorted(tuple(r) for r in connection.execute(select(*columns)))


def _approvals(connection: Connection) -> list[tuple]:
    columns = [approvals.c[name] for name in PROJECTED_APPROVAL]
    return sorted(tuple(r) for r in connection.execute(select(*columns)))
