"""Evaluation results on record: one row per evaluation of an agent version on a suite,
with the result's JSON (evals/results.py). Promotion reads the latest one."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from steward.store.database import Database
from steward.store.schema import eval_results


@dataclass(frozen=True, slots=True)
class EvalRow:
    id: str
    agent: str
    version: str
    suite: str
    passed: bool
    required_passed: int
    required_total: int
    scored_rate: float | None
    summary: str
    created_at: float
    created_by: str


def _row(r: Any) -> EvalRow:
    return EvalRow(
        r.id,
        r.agent,
        r.version,
        r.suite,
        bool(r.passed),
        int(r.required_passed),
        int(r.required_total),
        r.scored_rate,
        r.summary,
        r.created_at,
        r.created_by,
    )


def record_eval(
    db: Database,
    *,
    agent: str,
    version: str,
    suite: str,
    passed: bool,
    required_passed: int,
    required_total: int,
    scored_rate: float | None,
    summary: str,
    by: str,
) -> EvalRow:
    row = EvalRow(
        f"ev_{uuid.uuid4().hex[:20]}",
        agent,
        version,
        suite,
        passed,
        required_passed,
        required_total,
        scored_rate,
        summary,
        time.time(),
        by,
    )
    with db.writer.begin() as connection:
        connection.execute(
            insert(eval_results).values(
                id=row.id,
                agent=agent,
                version=version,
                suite=suite,
                passed=passed,
                required_passed=required_passed,
                required_total=required_total,
                scored_rate=scored_rate,
                summary=summary,
                created_at=row.created_at,
                created_by=by,
            )
        )
    return row


def latest_eval(db: Database, agent: str, version: str, suite: str) -> EvalRow | None:
    """The newest evaluation of that exact version on that suite (a later failing run
    withdraws an earlier pass)."""
    query = (
        select(eval_results)
        .where(
            eval_results.c.agent == agent,
            eval_results.c.version == version,
            eval_results.c.suite == suite,
        )
        .order_by(eval_results.c.created_at.desc(), eval_results.c.id.desc())
        .limit(1)
    )
    with db.reader.connect() as connection:
        found = connection.execute(query).first()
    return None if found is None else _row(found)


def list_evals(db: Database, agent: str, limit: int = 50) -> list[EvalRow]:
    query = (
        select(eval_results)
        .where(eval_results.c.agent == agent)
        .order_by(eval_results.c.created_at.desc())
        .limit(limit)
    )
    with db.reader.connect() as connection:
        return [_row(r) for r in connection.execute(query)]
