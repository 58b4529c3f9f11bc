"""The journal writer's append on PostgreSQL: one statement, one round trip per batch.

The generic append (chain.append_rows) begins, reads the chain head FOR UPDATE, inserts
the rows, advances the head, projects and commits: five round trips or more, which made
a commit cost 2-3 times PostgreSQL's own fsync. Here the writer remembers where its last
batch ended the chain and sends one statement on an autocommit connection: it advances
the head *from where the writer expects it* and, only if it did, inserts the rows from
arrays and the batch's fleet facts (the projection every tool call has); it answers
how many head rows it moved, and 0 means another transaction appended first and nothing
was written. The statement is its own transaction, so its answer is the commit's. A
batch with other projections (a run's start, wait or finish, a model call's cost) runs
the same statement and then its projections inside BEGIN ... COMMIT, consecutive
statements of one kind as one (projections.MANY) or one executemany.

When another writer (another replica, a decision, a claim) moved the head, nothing was
written: the head is read again and the batch re-hashed after it. Writers in every
process still serialise on the head row, and the chain stays one chain.

Every commit waits for PostgreSQL's WAL flush (synchronous_commit stays on). Committing
batches nobody awaits yet with `synchronous_commit = off` was weighed and left out: the
journal would need a second watermark (committed, not yet flushed) and a forced flush
for a later `flush()` of those tickets, and listeners (SSE, the console) and other
connections would see events that a crash of the database server can still erase, so
what a client was shown could be lost. It would gain nothing where durability is asked
for (a keyed write's intent, a producer flushing each event): those commits must flush.

(Migration 0010's `steward_append_events` did the same in a function; it stays for a
replica of the previous release during an upgrade, and this statement needs nothing of
it. The statement in SQL is as fast, and it carries the facts without a second copy of
their projection in PL/pgSQL.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from steward.store.chain import ChainTip, PendingEvent, chain_rows, projections
from steward.store.projections import FACT, FACTS_IF_MOVED, MANY

# Arrays go in binary (%b): psycopg escapes each element of a text array for the text
# format with a regular expression in Python, ~15 µs an event (the JSON is full of
# quotes); binary elements are length-prefixed bytes.
_MOVE = (
    "UPDATE chain_head SET last_id = %s, last_hash = %s"
    " WHERE id = 1 AND last_id = %s AND last_hash = %s RETURNING 1"
)
_ROWS = (
    "INSERT INTO events (id, run_id, type, ts, data, prev_hash, hash) SELECT u.*"
    " FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::float8[], %b::text[],"
    " %b::text[], %b::text[]) AS u, moved"
)
_APPEND = f"WITH moved AS ({_MOVE}), appended AS ({_ROWS}) SELECT count(*) FROM moved"
_APPEND_FACTS = (
    f"WITH moved AS ({_MOVE}), appended AS ({_ROWS}), facts AS ({FACTS_IF_MOVED})"
    " SELECT count(*) FROM moved"
)
_HEAD = "SELECT last_id, last_hash FROM chain_head WHERE id = 1"
MOVED = "40001"  # serialization_failure: migration 0010's function's answer when it moved
MAX_MOVES = 100  # heads moved by others in a row before the batch counts as failed


class HeadMoved(Exception):
    """Another transaction appended after the head the writer expected: nothing of the
    batch was written."""


def read_head(raw: Any) -> ChainTip:
    """The chain head as committed now (no lock: the append checks it again)."""
    cursor = raw.cursor()
    try:
        cursor.execute(_HEAD)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return ChainTip(int(row[0]), str(row[1]))


def head_moved(exc: BaseException) -> bool:
    return isinstance(exc, HeadMoved) or getattr(exc, "sqlstate", None) == MOVED


def append_autocommit(
    raw: Any, head: ChainTip, batch: Sequence[PendingEvent], will_end: Callable[[ChainTip], None]
) -> ChainTip:
    """Append `batch` after `head` on the autocommit psycopg connection `raw`, committed
    when this returns. `will_end(tip)` hears where the batch ends the chain before the
    commit is sent (so a lost answer can be checked). Raises the driver's error, or
    HeadMoved (`head_moved()`): nothing was written and the head must be read again."""
    rows, tip = chain_rows(head, batch)
    will_end(tip)
    moves = (tip.last_id, tip.last_hash, head.last_id, head.last_hash)
    arguments = (*moves, *([*column] for column in zip(*rows, strict=True)))
    projected = grouped(projections(batch))
    cursor = raw.cursor()
    try:
        if not projected or (len(projected) == 1 and projected[0][0] == FACT):
            if projected:  # facts only: they go in the same statement
                arguments = (*arguments, *_columns(projected[0][1]))
            cursor.execute(_APPEND_FACTS if projected else _APPEND, arguments)
            _check(cursor)
            return tip
        with raw.transaction():
            cursor.execute(_APPEND, arguments)
            _check(cursor)
            for statement, parameters in projected:
                many = MANY.get(statement)
                if many is not None:
                    cursor.execute(many, _columns(parameters))
                elif len(parameters) == 1:
                    cursor.execute(_format(statement), parameters[0])
                else:
                    cursor.executemany(_format(statement), parameters)
        return tip
    finally:
        cursor.close()


def _check(cursor: Any) -> None:
    row = cursor.fetchone()
    if not row or not row[0]:
        raise HeadMoved("the chain head moved: another transaction appended first")


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [[*column] for column in zip(*rows, strict=True)]


def grouped(
    statements: Iterable[tuple[str, tuple[Any, ...]]],
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive runs of the same statement (qmark style) with their parameter rows,
    in order: each run is one statement (projections.MANY) or one executemany."""
    out: list[tuple[str, list[tuple[Any, ...]]]] = []
    for statement, parameters in statements:
        if out and out[-1][0] == statement:
            out[-1][1].append(parameters)
        else:
            out.append((statement, [parameters]))
    return out


def _format(statement: str) -> str:
    return statement.replace("?", "%s")
