"""The view of an approval request the gate decides on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ApprovalView:
    id: str
    key: str
    status: str  # pending | approved | rejected | expired | cancelled
    call_hash: str
    expires_at: float
    used: bool
    comment: str = ""
    decided_by: str = ""
    decided_arguments: dict[str, Any] | None = None
