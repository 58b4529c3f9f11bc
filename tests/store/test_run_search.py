"""Finding runs (store/search.py): words in the input or answer (prefixes, every word
required), tags and a time range, on both stores; on SQLite without FTS5, LIKE."""

from __future__ import annotations

import pytest

from steward.core.events import RunFinished, RunStarted, RunStatus
from steward.store import Database, Journal
from steward.store.runs import list_runs
from steward.store.search import RunFilter, SearchError, parse_tags

RUNS = [
    ("r1", "Where is my parcel for order #10056?", "It shipped on Monday.", "acme", 1000.0),
    ("r2", "Please refund order #10114", "I've refunded $40.00.", "globex", 2000.0),
    ("r3", "Change my delivery address", "Done: the address is updated.", "acme", 3000.0),
    ("r4", "Refund the damaged blender", "", "acme", 4000.0),
]


@pytest.fixture
def runs_db(any_db: Database) -> Database:
    journal = Journal(any_db)
    try:
        for run_id, asked, answer, tenant, ts in RUNS:
            journal.append(run_id, RunStarted("desk", "v1", asked, {"tenant": tenant}), ts=ts)
            if answer:
                journal.append(run_id, RunFinished(RunStatus.SUCCEEDED, answer), ts=ts + 1)
        journal.flush_sync()
    finally:
        journal.close()
    return any_db


def _ids(db: Database, wanted: RunFilter) -> list[str]:
    return sorted(r.id for r in list_runs(db, where=wanted))


def test_words_in_input_or_answer(runs_db: Database) -> None:
    assert _ids(runs_db, RunFilter("refund")) == ["r2", "r4"]  # r2's input, r4's input
    assert _ids(runs_db, RunFilter("shipped")) == ["r1"]  # the answer
    assert _ids(runs_db, RunFilter("refund blender")) == ["r4"]  # every word
    assert _ids(runs_db, RunFilter("addr")) == ["r3"]  # a prefix
    assert _ids(runs_db, RunFilter("10056")) == ["r1"]
    assert _ids(runs_db, RunFilter('"unbalanced (quote* OR')) == []  # no syntax errors


def test_tags_and_time_range(runs_db: Database) -> None:
    assert _ids(runs_db, RunFilter(tags={"tenant": "acme"})) == ["r1", "r3", "r4"]
    assert _ids(runs_db, RunFilter("refund", tags={"tenant": "acme"})) == ["r4"]
    assert _ids(runs_db, RunFilter(since=2000.0, until=4000.0)) == ["r2", "r3"]
    assert _ids(runs_db, RunFilter(tags={"tenant": "nobody"})) == []


def test_bad_filters_name_their_field() -> None:
    with pytest.raises(SearchError) as bad_tag:
        parse_tags(["tenant"])
    assert bad_tag.value.field == "tag"
    with pytest.raises(SearchError) as bad_key:
        RunFilter(tags={"ten'ant": "x"})
    assert bad_key.value.field == "tag"
    for nul in ({"search": "a\x00b"}, {"tags": {"tenant": "a\x00"}}):
        with pytest.raises(SearchError, match="NUL"):  # PostgreSQL would refuse it: a 500
            RunFilter(**nul)  # type: ignore[arg-type]
    with pytest.raises(SearchError) as backwards:
        RunFilter(since=10.0, until=5.0)
    assert backwards.value.field == "until"


def test_sqlite_without_fts5_falls_back_to_like(sqlite_db: Database) -> None:
    with sqlite_db.writer.begin() as connection:
        for trigger in ("runs_fts_insert", "runs_fts_delete", "runs_fts_update"):
            connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
        connection.exec_driver_sql("DROP TABLE runs_fts")
    journal = Journal(sqlite_db)
    try:
        journal.append("r1", RunStarted("desk", "v1", "Where is my PARCEL?"), ts=1.0)
        journal.append("r2", RunStarted("desk", "v1", "100% off?"), ts=2.0)
        journal.flush_sync()
    finally:
        journal.close()
    assert _ids(sqlite_db, RunFilter("parcel")) == ["r1"]
    assert _ids(sqlite_db, RunFilter("%")) == ["r2"]  # LIKE's wildcard is escaped
