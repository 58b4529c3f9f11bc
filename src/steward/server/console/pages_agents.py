"""The agents page: each agent's kill switch and autonomy mode (admins change them, with a
comment that is audited), its labels (promote through the evaluation gate, roll back) and
the spec versions on record, with the diff between two of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from steward.core.agent_state import Autonomy
from steward.core.errors import ConflictError, InvalidInput, NotFoundError, PermissionDenied
from steward.evals.promotion import Actor as PromotionActor
from steward.evals.promotion import PromotionRefused
from steward.evals.promotion import promote as promote_version
from steward.evals.promotion import rollback as rollback_label
from steward.monitor.view import agent_monitors
from steward.prompts.diff import version_diff
from steward.security.keys import Permission, Role
from steward.server.api.agents import agent_overview, agents_overview
from steward.server.auth import check
from steward.server.console.render import PREFIX, page, redirect
from steward.server.console.session import Actor, Reader
from steward.server.service import RunService
from steward.store.evaluations import list_evals
from steward.store.labels import list_labels
from steward.store.mcp_pins import Pin, approve_pin, list_pins
from steward.store.runs import list_agent_versions

router = APIRouter(prefix=PREFIX, include_in_schema=False)
AGENTS = f"{PREFIX}/agents"
MODES = {
    "advisory": "every write waits for a person",
    "supervised": "the spec's decision tiers apply",
    "autonomous": "what the spec sends to review is allowed; forbidden stays forbidden",
}


@router.get("/agents")
def agents_page(request: Request, who: Reader) -> Response:
    service: RunService = request.app.state.service
    agents = agents_overview(service)
    versions = {a.name: list_agent_versions(service.db, a.name) for a in agents}
    drift = {a.name: agent_monitors(service.db, a.name, alarms=10) for a in agents}
    labels = {a.name: list_labels(service.db, a.name) for a in agents}
    evals = {a.name: list_evals(service.db, a.name) for a in agents}
    pins: dict[str, list[Pin]] = {}
    for pin in list_pins(service.db):
        pins.setdefault(pin.agent, []).append(pin)
    return page(
        request, "agents.html", who, section="agents", agents=agents, versions=versions,
        modes=MODES, drift=drift, labels=labels, evals=evals, pins=pins,
    )  # fmt: skip


@router.get("/agents/{name}/diff")
def diff_page(
    name: str,
    request: Request,
    who: Reader,
    old: Annotated[str, Query(min_length=1, max_length=64)],
    new: Annotated[str, Query(min_length=1, max_length=64)],
) -> Response:
    """What changed from version `old` to `new`: spec and prompt file."""
    check(who, Permission.READ, name)
    service: RunService = request.app.state.service
    text = version_diff(service.db, name, old, new)
    lines = [(_line_kind(line), line) for line in text.splitlines()]
    return page(request, "agent_diff.html", who, section="agents", name=name, old=old, new=new,
                lines=lines)  # fmt: skip


def _line_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "ctx")


@router.post("/agents/{name}/promote")
def promote(
    name: str,
    request: Request,
    who: Actor,
    version: Annotated[str, Form(min_length=1, max_length=64)],
    label: Annotated[str, Form(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")] = "production",
    override: Annotated[str, Form(pattern="^(|on)$")] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Through the evaluation gate; an admin may override with a reason (audited)."""
    service = _change(request, name, who)
    try:
        event = promote_version(service.db, name, version, label=label,
                                actor=PromotionActor(who.label, who.role is Role.ADMIN),
                                override_reason=reason if override else None,
                                on_commit=service.journal.publish)  # fmt: skip
    except (PromotionRefused, InvalidInput, PermissionDenied, NotFoundError) as exc:
        return redirect(AGENTS, f"Not promoted: {exc}", "error")
    return redirect(AGENTS, f"{name} {label} now runs {event.version} ({event.action}).")


@router.post("/agents/{name}/rollback")
def rollback(
    name: str,
    request: Request,
    who: Actor,
    label: Annotated[str, Form(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")] = "production",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service = _change(request, name, who)
    try:
        event = rollback_label(service.db, name, label=label,
                               actor=PromotionActor(who.label, who.role is Role.ADMIN),
                               reason=reason.strip(), on_commit=service.journal.publish)  # fmt: skip
    except (PromotionRefused, ConflictError, NotFoundError) as exc:
        return redirect(AGENTS, f"Not rolled back: {exc}", "error")
    return redirect(AGENTS, f"{name} {label} rolled back to {event.version}.")


def _change(request: Request, name: str, who: Actor) -> RunService:
    check(who, Permission.MANAGE_AGENTS)
    service: RunService = request.app.state.service
    agent_overview(service, name)  # 404 for an unknown agent
    return service


@router.post("/agents/{name}/switch")
def switch(
    name: str,
    request: Request,
    who: Actor,
    enabled: Annotated[str, Form(pattern="^(on|off)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The kill switch: off stops new runs and denies pending and next tool calls."""
    service = _change(request, name, who)
    on = enabled == "on"
    if not on and not comment.strip():
        return redirect(AGENTS, "Say why you disable the agent (the comment is audited).", "error")
    service.set_state(name, by=who.label, enabled=on, comment=comment.strip())
    verb = "enabled" if on else "disabled: no new runs start and its tool calls are denied"
    return redirect(AGENTS, f"{name} {verb}.")


@router.post("/agents/{name}/mode")
def set_mode(
    name: str,
    request: Request,
    who: Actor,
    mode: Annotated[str, Form(pattern="^(advisory|supervised|autonomous)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service = _change(request, name, who)
    service.set_state(name, by=who.label, mode=Autonomy(mode), comment=comment.strip())
    return redirect(AGENTS, f"{name} is now {mode}: {MODES[mode]}.")


@router.post("/agents/{name}/mcp/{tool}/approve")
def approve_mcp_tool(
    name: str,
    tool: str,
    request: Request,
    who: Actor,
    sha256: Annotated[str, Form(pattern="^[0-9a-f]{64}$")],
) -> Response:
    """Trust the definition a quarantined MCP tool shows now: the one shown on the page."""
    check(who, Permission.MANAGE_AGENTS)
    service: RunService = request.app.state.service
    approve_pin(service.db, name, tool, by=who.label, sha256=sha256,
                on_commit=service.journal.publish)  # fmt: skip
    return redirect(AGENTS, f"{tool} of {name}: its new definition is approved.")
