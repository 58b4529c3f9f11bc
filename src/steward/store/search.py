"""Finding runs: full-text search over a run's input and answer, tenant (tag) filters and
a creation-time range. One function builds the conditions, with a branch per dialect:

- SQLite: the FTS5 index `runs_fts` (migration 0014), every word a prefix match, all
  words required; LIKE over input and output when the library has no FTS5;
- PostgreSQL: to_tsvector('simple', input || ' ' || output) @@ a prefix tsquery (the
  GIN index ix_runs_search), ILIKE when the text has no words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, or_, text

from steward.store.json_fields import FIELD_NAME, text_field
from steward.store.schema import runs

TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_SEARCH = 200  # characters of search text


class SearchError(ValueError):
    """A filter that cannot be applied; `field` names it (search, tag, since, until)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What `list_runs` narrows by besides agent and status. Empty: every run."""

    search: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if len(self.search) > MAX_SEARCH:
            raise SearchError("search", f"at most {MAX_SEARCH} characters")
        if "\x00" in self.search:  # PostgreSQL's text cannot hold it: a 422, never a 500
            raise SearchError("search", "must not contain a NUL character")
        for key, value in self.tags.items():
            if "\x00" in value:
                raise SearchError("tag", f"the value of {key!r} must not contain a NUL character")
            if not TAG_KEY.match(key):
                raise SearchError("tag", f"{key!r} is not a tag key (letters, digits, _ . : -)")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise SearchError("until", "must be after since")

    @property
    def empty(self) -> bool:
        return not (self.search.strip() or self.tags) and self.since is None and self.until is None


def parse_tags(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["tenant=acme"]` → {"tenant": "acme"}; SearchError("tag", ...) otherwise."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SearchError("tag", f"{pair!r}: expected key=value, like tenant=acme")
        if not FIELD_NAME.match(key.strip()):
            raise SearchError("tag", f"{key!r}: a tag name is letters, digits, _ . : -")
        found[key.strip()] = value.strip()
    return found


def _has_fts(connection: Connection) -> bool:
    found = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs_fts'"
    ).first()
    return found is not None


def _like(words: list[str], phrase: str) -> ColumnElement[bool]:
    terms = words or [phrase.strip()]
    return and_(*(or_(runs.c.input.icontains(t, autoescape=True),
                      runs.c.output.icontains(t, autoescape=True)) for t in terms))  # fmt: skip


def _text(connection: Connection, phrase: str) -> ColumnElement[bool]:
    words = _WORD.findall(phrase)
    dialect = connection.dialect.name
    if dialect == "sqlite" and words and _has_fts(connection):
        query = " ".join(f'"{w}"*' for w in words)  # each word a quoted prefix: no syntax
        matching = text("SELECT rowid FROM runs_fts WHERE runs_fts MATCH :q").bindparams(q=query)
        return literal_column("runs.rowid").in_(matching)
    if dialect == "postgresql" and words:
        query = " & ".join(f"{w}:*" for w in words)
        document = func.to_tsvector(literal_column("'simple'"), runs.c.input + " " + runs.c.output)
        return document.bool_op("@@")(func.to_tsquery(literal_column("'simple'"), query))
    return _like(words, phrase)


def _tag(dialect: str, key: str, value: str) -> ColumnElement[bool]:
    return text_field(dialect, runs.c.tags, key) == value


def conditions(connection: Connection, wanted: RunFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `runs` for a filter, in this connection's dialect."""
    where: list[ColumnElement[bool]] = []
    if wanted.search.strip():
        where.append(_text(connection, wanted.search))
    for key, value in sorted(wanted.tags.items()):
        where.append(_tag(connection.dialect.name, key, value))
    if wanted.since is not None:
        where.append(runs.c.created_at >= wanted.since)
    if wanted.until is not None:
        where.append(runs.c.created_at < wanted.until)
    return where
