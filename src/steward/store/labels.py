"""Labels: `production`, `staging` or any name, pointing an agent at a version (its
content hash), optionally sending a share of runs to a canary version. Each move is a row
of `label_history` and a `LabelMoved` event in the audit chain, written in one
transaction; whether a move is allowed (an evaluation gate) is decided above the store
(evals/promotion.py)."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from steward.core.errors import ConflictError, InvalidInput
from steward.core.events import LabelMoved
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.schema import agent_labels, label_history

LABEL_RE = r"^[a-z][a-z0-9_\-]{0,63}$"
STABLE, CANARY = "stable", "canary"


@dataclass(frozen=True, slots=True)
class LabelRow:
    agent: str
    label: str
    version: str
    canary_version: str | None
    canary_percent: int
    updated_at: float
    updated_by: str


@dataclass(frozen=True, slots=True)
class LabelMove:
    id: int
    agent: str
    label: str
    version: str
    previous: str | None
    canary_version: str | None
    canary_percent: int
    action: str
    by: str
    reason: str
    eval_result: str | None
    at: float


def canary_arm(run_id: str, percent: int) -> str:
    """The arm a run falls in, the same every time for the same run id: the first 32 bits
    of SHA-256(run id), modulo 100, below `percent` is the canary."""
    if percent <= 0:
        return STABLE
    bucket = int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:4], "big") % 100
    return CANARY if bucket < percent else STABLE


def _row(r: Any) -> LabelRow:
    return LabelRow(
        r.agent,
        r.label,
        r.version,
        r.canary_version,
        int(r.canary_percent),
        r.updated_at,
        r.updated_by,
    )


def get_label(db: Database, agent: str, label: str) -> LabelRow | None:
    with db.reader.connect() as connection:
        found = connection.execute(
            select(agent_labels).where(agent_labels.c.agent == agent, agent_labels.c.label == label)
        ).first()
    return None if found is None else _row(found)


def list_labels(db: Database, agent: str | None = None) -> list[LabelRow]:
    query = select(agent_labels).order_by(agent_labels.c.agent, agent_labels.c.label)
    if agent is not None:
        query = query.where(agent_labels.c.agent == agent)
    with db.reader.connect() as connection:
        return [_row(r) for r in connection.execute(query)]


def label_moves(db: Database, agent: str, label: str | None = None) -> list[LabelMove]:
    """Every move of the agent's labels (or of one), oldest first."""
    query = select(label_history).where(label_history.c.agent == agent)
    if label is not None:
        query = query.where(label_history.c.label == label)
    with db.reader.connect() as connection:
        rows = connection.execute(query.order_by(label_history.c.id)).all()
    return [
        LabelMove(
            int(r.id),
            r.agent,
            r.label,
            r.version,
            r.previous,
            r.canary_version,
            int(r.canary_percent),
            r.action,
            r.by,
            r.reason,
            r.eval_result,
            r.at,
        )
        for r in rows
    ]


def rollback_target(moves: list[LabelMove]) -> str | None:
    """The version a rollback returns to: the label's versions replayed as a stack (a
    promotion or override pushes, a rollback pops), one below the top."""
    stack: list[str] = []
    for move in moves:
        if move.action in {"promote", "override"}:
            stack.append(move.version)
        elif move.action == "rollback" and stack:
            stack.pop()
    return stack[-2] if len(stack) >= 2 else None


def move_label(
    db: Database,
    agent: str,
    label: str,
    version: str,
    *,
    action: str,
    by: str,
    reason: str = "",
    suite: str = "",
    eval_result: str | None = None,
    canary: tuple[str, int] | None = None,
    expect_version: str | None = None,
    on_commit: Published | None = None,
) -> LabelMoved:
    """Point `label` at `version` (action promote, override or rollback), or with action
    `canary` keep its version and send `canary[1]`% of runs to `canary[0]` (0% ends the
    canary). A promotion to the label's canary version ends the canary. `expect_version`:
    refuse (ConflictError) unless the label still points there (a rollback computed from
    what it read)."""
    if not re.match(LABEL_RE, label):
        raise InvalidInput(f"label: {label!r} is not a label name (lowercase, digits, - and _)")
    moment = time.time()
    with db.writer.begin() as connection:
        current = connection.execute(
            select(agent_labels)
            .where(agent_labels.c.agent == agent, agent_labels.c.label == label)
            .with_for_update()
        ).first()
        previous = None if current is None else str(current.version)
        if expect_version is not None and previous != expect_version:
            raise ConflictError(
                f"label {label} of {agent} moved to {previous} meanwhile; read it again"
            )
        canary_version, percent = (None, 0)
        if action == "canary":
            if current is None:
                raise ConflictError(f"{agent} has no label {label} to split")
            version = previous or version
            canary_version, percent = canary if canary and canary[1] > 0 else (None, 0)
        elif current is not None and current.canary_version not in (None, version):
            canary_version, percent = current.canary_version, int(current.canary_percent)
        values = {
            "version": version,
            "canary_version": canary_version,
            "canary_percent": percent,
            "updated_at": moment,
            "updated_by": by,
        }
        if current is None:
            connection.execute(insert(agent_labels).values(agent=agent, label=label, **values))
        else:
            connection.execute(
                update(agent_labels)
                .where(agent_labels.c.agent == agent, agent_labels.c.label == label)
                .values(**values)
            )
        connection.execute(
            insert(label_history).values(
                agent=agent,
                label=label,
                version=version,
                previous=previous,
                canary_version=canary_version,
                canary_percent=percent,
                action=action,
                by=by,
                reason=reason,
                eval_result=eval_result,
                at=moment,
            )
        )
        event = LabelMoved(
            agent,
            label,
            version,
            action,
            by,
            previous or "",
            reason,
            suite,
            eval_result or "",
            canary_version or "",
            percent,
        )
        pending = append_event(connection, None, event, moment)
    if on_commit is not None:
        on_commit([pending])
    return event
