"""Agents: list with their state, versions, the kill switch and the autonomy mode."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from steward.core.agent_state import DEFAULT_STATE, Autonomy
from steward.core.errors import NotFoundError
from steward.security.keys import Permission, Principal
from steward.server.api._common import service_of
from steward.server.auth import check, principal, requires
from steward.server.schemas import AgentOut, ModeChange, StateChange, VersionOut
from steward.server.service import RunService
from steward.store.agents import list_agents
from steward.store.runs import list_agent_versions

router = APIRouter(prefix="/v1/agents", tags=["agents"])


def agents_overview(service: RunService) -> list[AgentOut]:
    """Every agent the server loaded or the store knows a state for."""
    stored = {row.name: row for row in list_agents(service.db)}
    out = []
    for name in sorted(set(stored) | set(service.agents)):
        row = stored.get(name)
        state = row.state if row is not None else DEFAULT_STATE
        loaded = service.agents.get(name)
        out.append(
            AgentOut(
                name=name,
                loaded_version=loaded.version if loaded is not None else None,
                enabled=state.enabled,
                mode=state.mode.value,
                state_version=state.version,
                updated_by=row.updated_by if row is not None else None,
                comment=row.comment if row is not None else None,
            )
        )
    return out


def agent_overview(service: RunService, name: str) -> AgentOut:
    """One agent: loaded here, with a stored state, or with recorded versions."""
    found = next((a for a in agents_overview(service) if a.name == name), None)
    if found is not None:
        return found
    if list_agent_versions(service.db, name):
        return AgentOut(name=name, loaded_version=None, enabled=DEFAULT_STATE.enabled,
                        mode=DEFAULT_STATE.mode.value, state_version=DEFAULT_STATE.version,
                        updated_by=None, comment=None)  # fmt: skip
    raise NotFoundError(f"no agent {name!r} is loaded or on record")


@router.get("", response_model=list[AgentOut])
def list_agents_route(
    request: Request, who: Principal = Depends(requires(Permission.READ))
) -> list[AgentOut]:
    return agents_overview(service_of(request))


@router.get("/{name}", response_model=AgentOut)
def get_agent(name: str, request: Request, who: Principal = Depends(principal)) -> AgentOut:
    check(who, Permission.READ, name)
    return agent_overview(service_of(request), name)


@router.get("/{name}/versions", response_model=list[VersionOut])
def versions(name: str, request: Request, who: Principal = Depends(principal)) -> list[VersionOut]:
    """The spec versions this agent has run with, newest first."""
    check(who, Permission.READ, name)
    service = service_of(request)
    agent_overview(service, name)
    return [
        VersionOut(version=v.version, created_at=v.created_at, spec_text=v.spec_text)
        for v in list_agent_versions(service.db, name)
    ]


def _change_state(
    request: Request,
    name: str,
    who: Principal,
    *,
    enabled: bool | None = None,
    mode: Autonomy | None = None,
    comment: str = "",
) -> AgentOut:
    """Flip the kill switch and/or the mode of a known agent (404 otherwise)."""
    service = service_of(request)
    agent_overview(service, name)
    service.set_state(name, by=who.label, enabled=enabled, mode=mode, comment=comment)
    return agent_overview(service, name)


@router.post("/{name}/disable", response_model=AgentOut)
def disable(
    name: str,
    body: StateChange,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> AgentOut:
    """The kill switch: no new runs; pending and next tool calls are denied."""
    return _change_state(request, name, who, enabled=False, comment=body.comment)


@router.post("/{name}/enable", response_model=AgentOut)
def enable(
    name: str,
    body: StateChange,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> AgentOut:
    return _change_state(request, name, who, enabled=True, comment=body.comment)


@router.put("/{name}/mode", response_model=AgentOut)
def set_mode(
    name: str,
    body: ModeChange,
    request: Request,
    who: Principal = Depends(requires(Permission.MANAGE_AGENTS)),
) -> AgentOut:
    """Progressive autonomy: advisory (every write reviewed), supervised (the spec's
    tiers) or autonomous. Each change is a recorded, audited state version."""
    return _change_state(request, name, who, mode=Autonomy(body.mode), comment=body.comment)
