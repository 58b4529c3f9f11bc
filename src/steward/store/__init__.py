"""The store: journal (events + audit chain), runs, approvals, agent versions."""

from steward.store.database import DEFAULT_URL, Database
from steward.store.journal import Journal

__all__ = ["DEFAULT_URL", "Database", "Journal"]
