"""The journal (group commit) and the audit chain, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, select, update

from steward.core.events import RunFinished, RunStarted, RunStatus, ToolSucceeded
from steward.store import Database, Journal
from steward.store.chain import verify_chain
from steward.store.runs import get_run, list_runs, read_journal
from steward.store.schema import call_facts, events


def _succeeded(n: int) -> ToolSucceeded:
    return ToolSucceeded(
        key=f"r:0:c{n}", tool="lookup", result={"n": n}, latency_ms=1.0, attempts=1
    )


async def test_flush_makes_every_appended_event_durable(any_db: Database, journal: Journal) -> None:
    journal.append("r1", RunStarted("agent", "v1", "hello"))
    for n in range(500):
        journal.append("r1", _succeeded(n))
    await journal.flush()
    entries = read_journal(any_db, "r1")
    assert len(entries) == 501
    assert [e.event for e in entries[1:4]] == [_succeeded(0), _succeeded(1), _succeeded(2)]
    assert journal.stats.events == 501


async def test_concurrent_producers_share_commits(any_db: Database, journal: Journal) -> None:
    async def producer(index: int) -> None:
        for n in range(50):
            journal.append(f"run{index}", _succeeded(n))
            await journal.flush()

    await asyncio.gather(*(producer(i) for i in range(20)))
    assert journal.stats.events == 1000
    assert journal.stats.commits < 1000, "group commit should carry several events per commit"
    with any_db.reader.connect() as connection:
        assert verify_chain(connection).ok


async def test_the_writer_regroups_a_batch_for_the_producers_it_released(
    any_db: Database,
) -> None:
    """8 producers each flushing after every event: the writer waits (briefly) for the
    producers its last commit released instead of leaving with the first of them, so a
    commit carries all 8. Without it, commits alternated between parts of the group (a
    mean of ~5.5 events a commit, each producer waiting a commit more)."""
    journal = Journal(any_db, commit_here=False)  # every commit on the writer thread
    try:

        async def producer(index: int) -> None:
            for n in range(40):
                journal.append(f"run{index}", _succeeded(n))
                await journal.flush()

        await asyncio.gather(*(producer(i) for i in range(8)))
    finally:
        journal.close()
    assert journal.stats.events == 320
    assert journal.stats.events / journal.stats.commits >= 6.5


async def test_projection_follows_events_in_the_same_transaction(
    any_db: Database, journal: Journal
) -> None:
    journal.append("r9", RunStarted("agent", "v1", "question", {"tenant": "acme"}))
    await journal.flush()
    assert get_run(any_db, "r9").status == "running"
    journal.append("r9", RunFinished(RunStatus.SUCCEEDED, "answer", 0.9, steps=2))
    await journal.flush()
    row = get_run(any_db, "r9")
    assert (row.status, row.output, row.steps, row.tags) == (
        "succeeded",
        "answer",
        2,
        {"tenant": "acme"},
    )
    assert [r.id for r in list_runs(any_db, agent="agent")] == ["r9"]


def _filled(db: Database, n: int = 20) -> None:
    journal = Journal(db)
    for i in range(n):
        journal.append("r1", _succeeded(i))
    journal.flush_sync()
    journal.close()
    with db.reader.connect() as connection:
        assert verify_chain(connection).ok


def test_verify_detects_an_edit(any_db: Database) -> None:
    _filled(any_db)
    with any_db.writer.begin() as connection:
        connection.execute(update(events).where(events.c.id == 7).values(data='{"type":"x"}'))
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert not report.ok
    assert [p.event_id for p in report.problems] == [7]
    assert "edited" in report.problems[0].problem


def test_verify_detects_a_deletion(any_db: Database) -> None:
    _filled(any_db)
    with any_db.writer.begin() as connection:
        connection.execute(delete(events).where(events.c.id == 5))
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert not report.ok
    assert report.problems[0].event_id == 6
    assert "missing" in report.problems[0].problem


def test_verify_detects_a_deletion_at_the_tail(any_db: Database) -> None:
    _filled(any_db)
    with any_db.writer.begin() as connection:
        connection.execute(delete(events).where(events.c.id == 20))
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert not report.ok
    assert "removed from the end" in report.problems[-1].problem


def test_verify_detects_reordering(any_db: Database) -> None:
    _filled(any_db)
    with any_db.writer.begin() as connection:
        rows = {r.id: r for r in connection.execute(select(events).where(events.c.id.in_([3, 4])))}
        # swap the contents of rows 3 and 4, hashes and all
        for target, source in ((3, rows[4]), (4, rows[3])):
            connection.execute(
                update(events)
                .where(events.c.id == target)
                .values(
                    data=source.data, hash=source.hash, prev_hash=source.prev_hash, ts=source.ts
                )
            )
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert not report.ok
    assert {p.event_id for p in report.problems} >= {3}


def test_verify_on_empty_log(any_db: Database) -> None:
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok and report.checked == 0


def test_two_processes_worth_of_journals_keep_one_chain(any_db: Database) -> None:
    """Two journals (as two processes would) interleave appends; the chain holds."""
    first, second = Journal(any_db), Journal(any_db)
    for n in range(200):
        (first if n % 2 else second).append("r", _succeeded(n))
    first.flush_sync()
    second.flush_sync()
    first.close()
    second.close()
    with any_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok and report.checked == 200


async def test_writers_that_interleave_on_postgres_re_hash_after_each_other(
    postgres_db: Database,
) -> None:
    """The PostgreSQL writer appends from where its last commit ended the chain, in one
    statement; when another writer (a replica) appended meanwhile, nothing of its batch
    lands, it reads the head again and re-hashes: every event once, in one chain."""
    first, second = Journal(postgres_db), Journal(postgres_db)
    try:
        for n in range(40):
            writer = first if n % 2 else second
            writer.append("r", _succeeded(n))
            await writer.flush()
    finally:
        first.close()
        second.close()
    assert first.stats.head_moves + second.stats.head_moves >= 30
    with postgres_db.reader.connect() as connection:
        report = verify_chain(connection)
    assert report.ok and report.checked == 40
    assert [e.event for e in read_journal(postgres_db, "r")] == [_succeeded(n) for n in range(40)]


async def test_facts_land_once_with_their_events_when_writers_interleave(
    any_db: Database,
) -> None:
    """A tool call's fleet fact is written with its event (on PostgreSQL in the batch's
    one statement): once per event, also when a batch is re-hashed after another writer
    moved the chain head, and never for a batch that did not land."""
    first, second = Journal(any_db), Journal(any_db)
    try:
        first.append("r", RunStarted("agent", "v1", "hello"))
        await first.flush()
        for n in range(40):
            writer = first if n % 2 else second
            writer.append("r", _succeeded(n))
            await writer.flush()
    finally:
        first.close()
        second.close()
    with any_db.reader.connect() as connection:
        assert verify_chain(connection).ok
        facts = connection.execute(
            select(call_facts.c.run_id, call_facts.c.agent, call_facts.c.kind)
        ).all()
    assert len(facts) == 40
    assert set(facts) == {("r", "agent", "tool")}
