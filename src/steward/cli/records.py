"""The JSON shapes `--json` prints (documented in README, section CLI): one function per
kind of record, fields named as in the REST API's bodies, times as RFC 3339 strings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steward.core.times import rfc3339, rfc3339_or_none

if TYPE_CHECKING:
    from steward.store.approvals import ApprovalRow
    from steward.store.audit import AuditEntry
    from steward.store.keys import KeyRow
    from steward.store.runs import RunRow

Record = dict[str, Any]


def run_record(row: RunRow) -> Record:
    return {
        "id": row.id,
        "agent": row.agent,
        "agent_version": row.agent_version,
        "status": row.status,
        "input": row.input,
        "output": row.output,
        "confidence": row.confidence,
        "reason_code": row.reason_code,
        "reason": row.reason,
        "steps": row.steps,
        "tags": dict(row.tags),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "finished_at": rfc3339_or_none(row.finished_at),
        "label": row.label,
        "arm": row.arm,
        "parent_run_id": row.parent_run_id,
        "root_run_id": row.root_run_id,
        "hop": row.hop,
    }


def approval_record(row: ApprovalRow) -> Record:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "agent": row.agent,
        "tool": row.tool,
        "arguments": row.arguments,
        "status": row.status,
        "reason": row.reason,
        "requested_at": rfc3339(row.requested_at),
        "expires_at": rfc3339(row.expires_at),
        "decided_by": row.decided_by,
        "comment": row.comment,
        "used": row.used,
    }


def key_record(row: KeyRow) -> Record:
    return {
        "id": row.id,
        "name": row.name,
        "principal_id": row.principal_id,
        "role": row.role.value,
        "agent": row.agent,
        "created_at": rfc3339(row.created_at),
        "created_by": row.created_by,
        "revoked_at": rfc3339_or_none(row.revoked_at),
    }


def event_record(entry: AuditEntry) -> Record:
    return {
        "id": entry.id,
        "run_id": entry.run_id,
        "type": entry.type,
        "ts": rfc3339(entry.ts),
        "data": entry.data,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
