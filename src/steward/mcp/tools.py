"""A spec's MCP servers → steward tools named `server.tool`, pinned and governed.

Only servers with a tool in the spec's `tools` list are started (lazily: when the agent is
built, not when its spec is read). Each listed tool becomes a `Tool` whose arguments are
validated against the server's inputSchema, whose effect is decided by the spec (never by
the server's annotations alone), and whose function asks the server through the hub; the
gate's execute stage is the only caller of that function. Each listing of the server (a
build, a restart) is compared with the pins in the store: a changed or poisoned
definition quarantines the tool, which then is hidden from the model and held (its calls
denied with the pin's reason) until an admin approves the definition it shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import mcp_types as types

from steward.core.errors import SpecError, SpecProblem
from steward.gate.stages.scan import DEFAULT_SCANNERS, injection_detector, scan_result
from steward.mcp.definitions import (
    canonical,
    definition_of,
    effect_of,
    poisoning,
    result_value,
    sha256_of,
)
from steward.mcp.hub import HUB, McpHub
from steward.mcp.supervisor import Supervisor
from steward.security.egress import schema_destinations
from steward.security.scanners import FindingAction, TextSource
from steward.spec.models import LoadedSpec, McpServer
from steward.store.database import Database
from steward.store.mcp_pins import observe_pin, pin_database, pin_hold
from steward.tools.base import ArgValidator, Tool, compile_validator

NOT_PINNED = "mcp.not_pinned"


def _untrusted_error(text: str) -> str:
    """An error result's text as a result is shown: injection quarantined, PII masked (the
    execute stage scans results, not errors)."""
    return str(scan_result(text, DEFAULT_SCANNERS, allow_pii=False, max_records=1).value)


def _validator(name: str, schema: dict[str, Any]) -> ArgValidator:
    """The schema's validator; a schema that does not compile rejects every call."""
    try:
        return compile_validator(schema)
    except Exception as exc:
        problem = f"the server's inputSchema of {name} does not compile: {exc}"

        def refuse(arguments: dict[str, Any]) -> Any:
            raise fastjsonschema.JsonSchemaException(problem)

        return refuse


@dataclass(frozen=True)
class _Pins:
    """Observes every listing of one server for one agent: pins what it shows."""

    db: Database
    agent: str
    server: str
    wanted: frozenset[str]
    scan: bool

    def __call__(self, listing: list[types.Tool]) -> None:
        detector = injection_detector(DEFAULT_SCANNERS) if self.scan else None
        for item in listing:
            name = f"{self.server}.{item.name}"
            if name not in self.wanted:
                continue
            definition = definition_of(item)
            text = canonical(definition)
            finding = poisoning(definition, detector)
            observe_pin(self.db, self.agent, name, sha256_of(text), text, finding=finding)
        _observed[0] += 1


# Bumped whenever this process observes a listing: a held-check cached before it is stale.
_observed = [0]
PIN_CACHE_SECONDS = 1.0  # how long a tool trusts its last read of its pin (another
# process's quarantine or approval takes effect within this; this process's at once)


def _hold(db: Database, agent: str, name: str, sha256: str) -> Callable[[], tuple[str, str] | None]:
    cached: list[Any] = [-1, 0.0, None]  # generation, when, answer

    def read() -> tuple[str, str] | None:
        return pin_hold(db, agent, name, shown="definition", not_pinned=NOT_PINNED,
                        sha256=sha256)  # fmt: skip

    def hold() -> tuple[str, str] | None:
        now = time.monotonic()
        if cached[0] != _observed[0] or now - cached[1] > PIN_CACHE_SECONDS:
            cached[:] = [_observed[0], now, read()]
        answer: tuple[str, str] | None = cached[2]
        return answer

    return hold


def _tool(
    hub: McpHub,
    supervisor: Supervisor,
    item: types.Tool,
    config: McpServer,
    timeout: float,
    hold: Callable[[], tuple[str, str] | None],
) -> Tool:
    name = f"{supervisor.name}.{item.name}"
    effect, idempotent = effect_of(item, config)
    schema = dict(item.input_schema)

    async def call(**arguments: Any) -> Any:
        # the gate bounds the call by `timeout`; the hub's bound is a backstop behind it
        result = await hub.run(supervisor.call(item.name, arguments, timeout + 1.0))
        return result_value(result, _untrusted_error)

    return Tool(
        name=name,
        description=item.description or "",
        parameters=schema,
        function=call,
        effect=effect,
        validator=_validator(name, schema),
        idempotent=idempotent,
        timeout=timeout,
        is_async=True,
        destinations=schema_destinations(schema),
        hold=hold,
    )


def mcp_tools(loaded: LoadedSpec, db: object | None, hub: McpHub = HUB) -> list[Tool]:
    """The tools of the spec's MCP servers that its `tools` list names, pinned in `db` (a
    steward Database; None: the deployment's, `STEWARD_DB`). The runtime hands `db` on
    without knowing the store (runtime/ imports none), hence `object`. A server that
    cannot be listed refuses to load, with the line of its entry."""
    pins = pin_database(db)
    spec = loaded.spec
    listed = set(spec.tools) | set(spec.decision_authority.forbidden)
    action = spec.injection.action_for(TextSource.MCP_TOOL_DESCRIPTIONS)
    scan = action is not None and action is not FindingAction.RECORD
    tools: list[Tool] = []
    for server, config in spec.mcp_servers.items():
        wanted = {n for n in listed if n.startswith(f"{server}.")}
        if not wanted:
            continue  # nothing of it is used: never started
        supervisor = hub.supervisor(server, config)
        supervisor.watch(_Pins(pins, spec.name, server, frozenset(wanted), scan))
        try:
            listing = hub.wait(supervisor.list_tools(), config.connect_timeout_seconds + 5.0)
        except Exception as exc:
            line = next((i for i, text in enumerate(loaded.text.splitlines(), 1)
                         if text.strip().startswith(f"{server}:")), 1)  # fmt: skip
            message = f"cannot list the tools of MCP server '{server}': {exc}"
            problem = SpecProblem(loaded.path, line, 1, f"mcp_servers.{server}", message)
            raise SpecError([problem]) from None
        timeout = config.call_timeout_seconds or spec.limits.tool_timeout_seconds
        for item in listing:
            name = f"{server}.{item.name}"
            if name in wanted:
                sha256 = sha256_of(canonical(definition_of(item)))
                tools.append(_tool(hub, supervisor, item, config, timeout,
                                   _hold(pins, spec.name, name, sha256)))  # fmt: skip
    return tools
