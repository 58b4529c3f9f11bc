"""Projections: the `runs` and `approvals` tables follow from events, updated in the same
transaction as the events, so a reader never sees one without the other."""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert, update

from steward.core.events import (
    ApprovalRequested,
    ApprovalUsed,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
)
from steward.store.schema import approvals, runs

PROJECTED = frozenset(
    {
        "run.started",
        "run.resumed",
        "run.waiting",
        "run.finished",
        "approval.requested",
        "approval.used",
    }
)


def project(connection: Connection, run_id: str | None, ts: float, event: object) -> None:
    if run_id is None:
        return
    if isinstance(event, RunStarted):
        connection.execute(
            insert(runs).values(
                id=run_id,
                agent=event.agent,
                agent_version=event.agent_version,
                status=RunStatus.RUNNING.value,
                input=event.input,
                output="",
                reason_code="",
                reason="",
                steps=0,
                tags=json.dumps(event.tags, sort_keys=True),
                created_at=ts,
                updated_at=ts,
            )
        )
    elif isinstance(event, RunResumed):
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=RunStatus.RUNNING.value, updated_at=ts)
        )
    elif isinstance(event, RunWaiting):
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=RunStatus.WAITING.value,
                reason_code="approval.pending",
                reason=event.reason,
                updated_at=ts,
            )
        )
    elif isinstance(event, RunFinished):
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=event.status.value,
                output=event.output,
                confidence=event.confidence,
                reason_code=event.reason_code,
                reason=event.reason,
                steps=event.steps,
                updated_at=ts,
                finished_at=ts,
            )
        )
    elif isinstance(event, ApprovalRequested):
        connection.execute(
            insert(approvals).values(
                id=event.approval_id,
                run_id=run_id,
                call_id=event.key,
                agent=event.agent,
                tool=event.tool,
                arguments=json.dumps(event.arguments, sort_keys=True),
                call_hash=event.call_hash,
                status="pending",
                reason=event.reason,
                requested_at=ts,
                expires_at=event.expires_at,
                comment="",
            )
        )
    elif isinstance(event, ApprovalUsed):
        connection.execute(
            update(approvals).where(approvals.c.id == event.approval_id).values(used_at=ts)
        )
