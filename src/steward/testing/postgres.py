"""A scratch schema in a PostgreSQL database, for tests and the crash soak."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text


@contextlib.contextmanager
def postgres_schema(base_url: str, prefix: str = "t") -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at `base_url`, dropped afterwards; yields
    a URL whose connections (this process's or a served one's) use it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
