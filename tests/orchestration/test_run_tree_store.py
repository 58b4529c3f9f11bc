"""The run tree on record (migration 0015): a delegated run's start carries its parent,
root and depth; the `runs` table projects them; run_tree and ancestry read them back.
On both stores, and an old journal (no tree fields) still reads as a root."""

from __future__ import annotations

import pytest

from steward.core.errors import NotFoundError
from steward.core.events import RunFinished, RunQueued, RunStarted, RunStatus, decode_event
from steward.store import Database, Journal
from steward.store.runs import ancestry, get_run, run_tree


def _child(parent: str, root: str, hop: int, key: str) -> RunStarted:
    return RunStarted("spec", "v1", "help", {"started_by": "p_ana"},
                      parent_run_id=parent, root_run_id=root, hop=hop, parent_key=key)  # fmt: skip


def test_a_tree_projects_and_reads_back_root_first(any_db: Database) -> None:
    journal = Journal(any_db)
    try:
        journal.append("r_root", RunStarted("triage", "v1", "where is my order"))
        journal.append("r_a", _child("r_root", "r_root", 1, "r_root:0:c1"))
        journal.append("r_b", _child("r_a", "r_root", 2, "r_a:0:c1"))
        # queued first, started later: the tree fields survive the queue
        journal.append("r_a2", RunQueued("spec", "v1", "again", parent_run_id="r_root",
                                         root_run_id="r_root", hop=1, parent_key="r_root:1:c1"))  # fmt: skip
        journal.append("r_other", RunStarted("triage", "v1", "unrelated"))
        journal.flush_sync()
        journal.append("r_a2", RunQueued("x", "v", "i").started())  # a plain root start
        journal.append("r_b", RunFinished(RunStatus.SUCCEEDED, "done"))
        journal.flush_sync()

        tree = run_tree(any_db, "r_root")
        assert [r.id for r in tree] == ["r_root", "r_a", "r_b", "r_a2"]
        assert [(r.parent_run_id, r.root_run_id, r.hop) for r in tree] == [
            (None, None, 0),
            ("r_root", "r_root", 1),
            ("r_a", "r_root", 2),
            ("r_root", "r_root", 1),
        ]
        assert get_run(any_db, "r_b").status == "succeeded"
        assert [r.id for r in ancestry(any_db, "r_b")] == ["r_root", "r_a", "r_b"]
        assert [r.id for r in ancestry(any_db, "r_root")] == ["r_root"]
        assert [r.id for r in run_tree(any_db, "r_other")] == ["r_other"]
        with pytest.raises(NotFoundError):
            run_tree(any_db, "r_missing")
        with pytest.raises(NotFoundError):
            ancestry(any_db, "r_missing")
    finally:
        journal.close()


def test_a_start_without_tree_fields_decodes_as_a_root() -> None:
    """Journals written before delegation existed replay unchanged."""
    old = b'{"type":"run.started","agent":"desk","agent_version":"v1","input":"hi"}'
    event = decode_event(old)
    assert isinstance(event, RunStarted)
    assert (event.parent_run_id, event.root_run_id, event.hop, event.parent_key) == ("", "", 0, "")


def test_queued_start_keeps_the_tree_fields() -> None:
    queued = RunQueued("spec", "v1", "i", parent_run_id="p", root_run_id="r", hop=2,
                       parent_key="p:0:c")  # fmt: skip
    started = queued.started()
    assert (started.parent_run_id, started.root_run_id, started.hop, started.parent_key) == (
        "p",
        "r",
        2,
        "p:0:c",
    )
