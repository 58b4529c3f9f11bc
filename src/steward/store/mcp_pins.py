"""Pinned MCP tool definitions (steward/mcp/) and remote A2A agent cards (steward/a2a_tools/,
tool `a2a.<name>`): trust on first sight, quarantine on change.

The first time an agent's MCP tool is seen its definition's SHA-256 is pinned. A later
listing that shows another definition (a "rug pull") quarantines the tool until an admin
approves what it shows now; a description holding instructions for the model quarantines
it from the start. Every change of a pin appends an McpPinChanged event to the audit chain
in the same transaction as the row change.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from steward.core.defaults import DEFAULT_DB_URL
from steward.core.errors import ConflictError, NotFoundError
from steward.core.events import McpPinChanged
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.schema import mcp_pins

PINNED = "pinned"
QUARANTINED = "quarantined"
CHANGED = "mcp.definition_changed"
POISONED = "mcp.tool_poisoning"


@dataclass(frozen=True, slots=True)
class Pin:
    agent: str
    tool: str
    status: str  # pinned | quarantined
    reason: str  # "" | mcp.definition_changed | mcp.tool_poisoning
    approved_sha256: str | None
    seen_sha256: str
    seen_definition: str
    detail: str
    first_seen: float
    updated_at: float
    updated_by: str

    @property
    def quarantined(self) -> bool:
        return self.status == QUARANTINED

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent, "tool": self.tool, "status": self.status,
            "reason": self.reason, "approved_sha256": self.approved_sha256,
            "seen_sha256": self.seen_sha256, "detail": self.detail,
            "first_seen": self.first_seen, "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }  # fmt: skip


def pin_database(db: object | None) -> Database:
    """Where pins live, from what the runtime hands on without knowing the store (runtime/
    imports none): a steward Database, or None for the deployment's (`STEWARD_DB`). Used
    by both pinned tool sources: MCP servers' tools and remote A2A agents' cards."""
    if db is None:
        return Database.open(os.environ.get("STEWARD_DB") or DEFAULT_DB_URL)
    if not isinstance(db, Database):
        raise TypeError(f"pins live in a steward Database, not {type(db).__name__}")
    return db


def _pin(row: Any) -> Pin:
    return Pin(
        row.agent, row.tool, row.status, row.reason, row.approved_sha256, row.seen_sha256,
        row.seen_definition, row.detail, row.first_seen, row.updated_at, row.updated_by,
    )  # fmt: skip


def _row(connection: Connection, agent: str, tool: str, lock: bool = False) -> Any:
    query = select(mcp_pins).where(mcp_pins.c.agent == agent, mcp_pins.c.tool == tool)
    return connection.execute(query.with_for_update() if lock else query).first()


def observe_pin(
    db: Database,
    agent: str,
    tool: str,
    sha256: str,
    definition: str,
    *,
    finding: str = "",
    on_commit: Published | None = None,
    changed: str = CHANGED,
    poisoned: str = POISONED,
) -> Pin:
    """Record what the server shows for `tool` now and return the pin as it stands.
    First sight pins it (or quarantines it when `finding` names a poisoned description);
    the trusted definition (pinned, or approved by an admin whatever its finding) again
    un-quarantines it; any other definition quarantines it. `changed` and `poisoned` are
    the reason codes (a remote A2A agent's card pins here too, as `a2a.<name>`, with
    `a2a.card_changed` and `a2a.bad_signature`: steward/a2a_tools/)."""
    moment = time.time()
    with db.writer.begin() as connection:
        row = _row(connection, agent, tool, lock=True)
        event: McpPinChanged | None = None
        if row is None:
            status, reason = (QUARANTINED, poisoned) if finding else (PINNED, "")
            connection.execute(
                insert(mcp_pins).values(
                    agent=agent, tool=tool, status=status, reason=reason,
                    approved_sha256=None if finding else sha256, seen_sha256=sha256,
                    seen_definition=definition, detail=finding, first_seen=moment,
                    updated_at=moment, updated_by="steward",
                )
            )  # fmt: skip
            event = McpPinChanged(agent, tool, status, reason, sha256, detail=finding)
        elif sha256 == row.approved_sha256:  # trusted: pinned, or approved by an admin
            if row.status != PINNED:  # the server went back to the trusted definition
                _set(connection, agent, tool, PINNED, "", sha256, definition, "", moment)
                event = McpPinChanged(agent, tool, PINNED, "", sha256, row.seen_sha256)
        elif sha256 != row.seen_sha256 or row.status != QUARANTINED:
            reason = poisoned if finding else changed
            _set(connection, agent, tool, QUARANTINED, reason, sha256, definition, finding, moment)
            previous = row.approved_sha256 or row.seen_sha256
            event = McpPinChanged(agent, tool, QUARANTINED, reason, sha256, previous,
                                  detail=finding)  # fmt: skip
        committed = append_event(connection, None, event, moment) if event else None
        pin = _pin(_row(connection, agent, tool))
    if committed is not None and on_commit is not None:
        on_commit([committed])
    return pin


def _set(
    connection: Connection,
    agent: str,
    tool: str,
    status: str,
    reason: str,
    sha256: str,
    definition: str,
    detail: str,
    moment: float,
) -> None:
    connection.execute(
        update(mcp_pins)
        .where(mcp_pins.c.agent == agent, mcp_pins.c.tool == tool)
        .values(status=status, reason=reason, seen_sha256=sha256, seen_definition=definition,
                detail=detail, updated_at=moment, updated_by="steward")
    )  # fmt: skip


def approve_pin(
    db: Database,
    agent: str,
    tool: str,
    *,
    by: str,
    sha256: str | None = None,
    on_commit: Published | None = None,
) -> Pin:
    """An admin trusts the definition the server shows now. `sha256`, when given, must be
    that definition's (so what was reviewed is what is approved); approving a tool that is
    not quarantined is a conflict."""
    moment = time.time()
    with db.writer.begin() as connection:
        row = _row(connection, agent, tool, lock=True)
        if row is None:
            raise NotFoundError(f"no pinned MCP tool {tool!r} for agent {agent!r}")
        if row.status != QUARANTINED:
            raise ConflictError(f"{tool} of agent {agent} is not quarantined")
        if sha256 is not None and sha256 != row.seen_sha256:
            raise ConflictError(
                f"{tool} now shows definition {row.seen_sha256[:12]}, not {sha256[:12]}: "
                "review it again"
            )
        connection.execute(
            update(mcp_pins)
            .where(mcp_pins.c.agent == agent, mcp_pins.c.tool == tool)
            .values(status=PINNED, reason="", approved_sha256=row.seen_sha256,
                    updated_at=moment, updated_by=by)
        )  # fmt: skip
        event = McpPinChanged(agent, tool, PINNED, "mcp.approved", row.seen_sha256,
                              row.approved_sha256 or "", by)  # fmt: skip
        committed = append_event(connection, None, event, moment)
        pin = _pin(_row(connection, agent, tool))
    if on_commit is not None:
        on_commit([committed])
    return pin


def pin_hold(
    db: Database, agent: str, tool: str, *, shown: str, not_pinned: str, sha256: str = ""
) -> tuple[str, str] | None:
    """Why a pinned tool may not be called now, as (reason code, reason), or None: it has
    no pin (`not_pinned`), its pin is quarantined, or (with `sha256`) the approved
    definition is not the one the tool was built with. `shown`: what the pin holds, as
    a reason names it ("definition", "agent card"). One check for MCP tools and A2A
    agents."""
    pin = get_pin(db, agent, tool)
    if pin is None:
        return not_pinned, f"{tool} has no pinned {shown}"
    if pin.quarantined:
        why = pin.detail or f"its {shown} changed since it was pinned"
        approve = f"an admin approves it with `steward mcp pins approve {agent} {tool}`"
        return pin.reason, f"{tool} is quarantined ({why}); {approve}"
    if sha256 and pin.approved_sha256 != sha256:
        return CHANGED, (
            f"{tool}'s approved {shown} is not the one this agent was built with; "
            "build the agent again"
        )
    return None


def get_pin(db: Database, agent: str, tool: str) -> Pin | None:
    with db.reader.connect() as connection:
        row = _row(connection, agent, tool)
    return _pin(row) if row is not None else None


def list_pins(db: Database, *, agent: str | None = None, quarantined: bool = False) -> list[Pin]:
    query = select(mcp_pins).order_by(mcp_pins.c.agent, mcp_pins.c.tool)
    if agent is not None:
        query = query.where(mcp_pins.c.agent == agent)
    if quarantined:
        query = query.where(mcp_pins.c.status == QUARANTINED)
    with db.reader.connect() as connection:
        return [_pin(r) for r in connection.execute(query)]
