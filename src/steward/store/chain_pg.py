"""The journal writer's append on PostgreSQL: one round trip per batch.

The generic append (chain.append_rows) begins, reads the chain head FOR UPDATE, inserts
the rows, advances the head, projects and commits: five round trips or more, which made
a commit cost 2-3 times PostgreSQL's own fsync. Here the writer remembers where its last
batch ended the chain and sends one statement on an autocommit connection:
`steward_append_events` (migration 0010) advances the head *from where the writer
expects it* and inserts the rows from arrays, or raises serialization_failure when
another transaction appended first. The statement is its own transaction, so its answer
is the commit's. A batch that projects (a run's start, wait or finish) adds its
statements inside BEGIN ... COMMIT.

When another writer (another replica, a decision, a claim) moved the head, nothing was
written: the head is read again and the batch re-hashed after it. Writers in every
process still serialise on the head row, and the chain stays one chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from steward.store.chain import ChainTip, PendingEvent, chain_rows, projections

_APPEND = (
    "SELECT steward_append_events(%s, %s, %s::bigint[], %s::text[], %s::text[],"
    " %s::float8[], %s::text[], %s::text[], %s::text[])"
)
_HEAD = "SELECT last_id, last_hash FROM chain_head WHERE id = 1"
MOVED = "40001"  # serialization_failure: the function's answer when the head moved
MAX_MOVES = 100  # heads moved by others in a row before the batch counts as failed


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
    return getattr(exc, "sqlstate", None) == MOVED


def append_autocommit(
    raw: Any, head: ChainTip, batch: Sequence[PendingEvent], will_end: Callable[[ChainTip], None]
) -> ChainTip:
    """Append `batch` after `head` on the autocommit psycopg connection `raw`, committed
    when this returns. `will_end(tip)` hears where the batch ends the chain before the
    commit is sent (so a lost answer can be checked). Raises the driver's error; one
    whose `head_moved()` means nothing was written and the head must be read again."""
    rows, tip = chain_rows(head, batch)
    will_end(tip)
    arguments = (head.last_id, head.last_hash, *([*column] for column in zip(*rows, strict=True)))
    projected = list(projections(batch))
    cursor = raw.cursor()
    try:
        if not projected:
            cursor.execute(_APPEND, arguments)
            return tip
        with raw.transaction():
            cursor.execute(_APPEND, arguments)
            for statement, parameters in projected:
                cursor.execute(statement.replace("?", "%s"), parameters)
        return tip
    finally:
        cursor.close()
