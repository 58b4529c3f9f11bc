"""Placeholder until the cancel branch lands (replaced by runtime-ask-cancel)."""

from __future__ import annotations

from steward.core.errors import StewardError
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import RunRow


def cancel_run(db: Database, journal: Journal, run_id: str, *, by: str, reason: str) -> RunRow:
    raise StewardError("cancelling a run that is not executing here is not available yet")
