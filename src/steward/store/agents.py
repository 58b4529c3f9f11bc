"""Agents' kill switch and autonomy mode: read, and change (each change is an audited
event in the chain, in the same transaction as the row)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from steward.core.agent_state import DEFAULT_STATE, AgentState, Autonomy
from steward.core.events import AgentStateChanged
from steward.store.chain import Published, append_event
from steward.store.database import Database
from steward.store.schema import agents


@dataclass(frozen=True, slots=True)
class AgentRow:
    name: str
    state: AgentState
    updated_at: float
    updated_by: str
    comment: str


def agent_state(db: Database, name: str) -> AgentState:
    with db.reader.connect() as connection:
        row = connection.execute(select(agents).where(agents.c.name == name)).first()
    if row is None:
        return DEFAULT_STATE
    return AgentState(bool(row.enabled), Autonomy(row.mode), int(row.version))


def list_agents(db: Database) -> list[AgentRow]:
    with db.reader.connect() as connection:
        rows = connection.execute(select(agents).order_by(agents.c.name)).all()
    return [AgentRow(r.name, AgentState(bool(r.enabled), Autonomy(r.mode), int(r.version)), r.updated_at,
                     r.updated_by, r.comment) for r in rows]  # fmt: skip


def set_agent_state(
    db: Database,
    name: str,
    *,
    by: str,
    enabled: bool | None = None,
    mode: Autonomy | None = None,
    comment: str = "",
    on_commit: Published | None = None,
) -> AgentState:
    """Flip the kill switch and/or change the mode; returns the new state."""
    moment = time.time()
    with db.writer.begin() as connection:
        row = connection.execute(
            select(agents).where(agents.c.name == name).with_for_update()
        ).first()
        current = (
            DEFAULT_STATE
            if row is None
            else AgentState(bool(row.enabled), Autonomy(row.mode), int(row.version))
        )
        new = AgentState(
            current.enabled if enabled is None else enabled,
            current.mode if mode is None else mode,
            current.version + 1,
        )
        values = {"enabled": new.enabled, "mode": new.mode.value, "version": new.version, "updated_at": moment,
                  "updated_by": by, "comment": comment}  # fmt: skip
        if row is None:
            connection.execute(insert(agents).values(name=name, **values))
        else:
            connection.execute(update(agents).where(agents.c.name == name).values(**values))
        event = AgentStateChanged(name, new.enabled, by, comment, new.mode.value)
        pending = append_event(connection, None, event, moment)
    if on_commit is not None:
        on_commit([pending])
    return new
