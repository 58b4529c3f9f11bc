"""Defaults more than one layer names (the CLI's option help must not import the store)."""

from __future__ import annotations

DEFAULT_DB_URL = "sqlite:///.steward/steward.db"
