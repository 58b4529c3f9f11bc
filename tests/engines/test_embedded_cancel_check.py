"""The embedded executor's check for a cancellation from another process is a read the
runner makes between steps: a transient store fault there (a connection the database
terminated, a lock held elsewhere) is asked again at the next step, never a failed run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from steward.engines import embedded
from steward.engines.embedded import EmbeddedExecutor
from steward.store import Database, Journal


def test_a_transient_fault_reading_the_cancellation_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 's.db'}")
    journal = Journal(db)
    try:
        executor = EmbeddedExecutor(db, journal, "run_x", "agent", "v1")
        answers: list[object] = [sqlite3.OperationalError("database is locked"), "stop it"]

        def cancellation(_db: Database, _run_id: str) -> str | None:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return str(answer)

        monkeypatch.setattr(embedded, "cancellation", cancellation)
        assert executor.cancelled() is None  # the fault: not known yet, asked again
        assert executor.cancelled() == "stop it"  # at once, not after the usual pause
        monkeypatch.setattr(
            embedded, "cancellation", lambda *_: (_ for _ in ()).throw(KeyError("a bug"))
        )
        executor._next_cancel_check = 0.0
        with pytest.raises(KeyError):  # a permanent fault is not hidden
            executor.cancelled()
    finally:
        journal.close()
        db.close()
