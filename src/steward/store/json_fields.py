"""Reading one field of a JSON object kept in a Text column, in SQL, per dialect (SQLite's
json functions, PostgreSQL's jsonb). Used to filter runs and approvals by their run's tags
(search.py, approvals.py) and to sort approvals by an amount among their arguments,
without reading rows into Python."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Float, case, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import cast

FIELD_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # what may be named: no quoting games


def _checked(key: str) -> str:
    if not FIELD_NAME.match(key):
        raise ValueError(f"{key!r} is not a field name (letters, digits, _ . : -)")
    return key


def text_field(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The field's value as text (NULL when absent)."""
    key = _checked(key)
    if dialect == "postgresql":
        found: ColumnElement[Any] = cast(column, JSONB)[key].astext
        return found
    return func.json_extract(column, f'$."{key}"')


def number_field(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The field's value when it is a JSON number, else NULL (a string such as "lots" is
    not an amount, and must never make the query fail)."""
    key = _checked(key)
    if dialect == "postgresql":
        value = cast(column, JSONB)[key]
        return case((func.jsonb_typeof(value) == "number", cast(value.astext, Float)), else_=None)
    path = f'$."{key}"'
    return case(
        (func.json_type(column, path).in_(("integer", "real")), func.json_extract(column, path)),
        else_=None,
    )
