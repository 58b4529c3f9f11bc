"""MCP servers' tools: their pinned definitions, and an admin's approval of a changed one."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from steward.security.keys import Permission, Principal
from steward.server.api._common import service_of
from steward.server.auth import requires
from steward.server.schemas import Body
from steward.store.mcp_pins import Pin, approve_pin, list_pins

router = APIRouter(prefix="/v1/mcp", tags=["mcp"])


class PinOut(BaseModel):
    agent: str
    tool: str
    status: str
    reason: str
    approved_sha256: str | None
    seen_sha256: str
    definition: str  # canonical JSON of what the server shows now
    detail: str
    first_seen: float
    updated_at: float
    updated_by: str


class PinApproval(Body):
    # the definition the admin reviewed: refused (409) if the server shows another by now
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


def pin_out(pin: Pin) -> PinOut:
    fields = pin.as_dict()
    return PinOut(**fields, definition=pin.seen_definition)


@router.get("/pins", response_model=list[PinOut])
def pins(
    request: Request,
    agent: str | None = None,
    quarantined: bool = False,
    who: Principal = Depends(requires(Permission.READ)),  # people: an agent key is refused
) -> list[PinOut]:
    """Pinned MCP tools; `quarantined=true`: those whose calls are denied until approved."""
    rows = list_pins(service_of(request).db, agent=agent, quarantined=quarantined)
    return [pin_out(p) for p in rows]


@router.post("/pins/{agent}/{tool}/approve", response_model=PinOut)
def approve(
    agent: str,
    tool: str,
    body: PinApproval,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> PinOut:
    """Trust the definition a quarantined tool shows now (audited as mcp.pin_changed)."""
    service = service_of(request)
    pin = approve_pin(service.db, agent, tool, by=who.label, sha256=body.sha256,
                      on_commit=service.journal.publish)  # fmt: skip
    return pin_out(pin)
