"""Assemble a runnable agent from a loaded spec: resolve tools, compile the policy, pick
the model, build the gate. Anything that does not resolve refuses to load."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from steward.core.errors import ModelError, SpecError, SpecProblem, UnknownToolError
from steward.gate.pipeline import Gate, GateConfig
from steward.gate.workers import ToolWorkers
from steward.models.factory import models_for
from steward.models.protocol import Model
from steward.policy import Policy, compile_policy
from steward.spec.models import LoadedSpec
from steward.tools.base import Tool
from steward.tools.builtin import BUILTINS
from steward.tools.registry import ToolRegistry


@dataclass(frozen=True, slots=True)
class AgentRuntime:
    loaded: LoadedSpec
    policy: Policy
    tools: dict[str, Tool]
    model: Model
    # the threads of this agent's synchronous tools (limits.tool_workers), shared by every
    # gate built from it: one per activation would start threads per run that idle on
    workers: ToolWorkers = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        limits = self.loaded.spec.limits
        object.__setattr__(self, "workers", ToolWorkers(limits.tool_workers, self.name))

    def gate(self, config: GateConfig) -> Gate:
        """This agent's gate over a deployment's shared state (gate/shared.py): the
        tools the spec lists, its policy, the kill switch and limits every process shares,
        and the agent's one pool of tool threads."""
        listed = {n: t for n, t in self.tools.items() if n in self.loaded.spec.tools}
        return Gate(self.policy, listed, config, workers=self.workers)

    @property
    def name(self) -> str:
        return self.loaded.spec.name

    @property
    def version(self) -> str:
        return self.loaded.version


def _line_of(loaded: LoadedSpec, needle: str) -> int:
    pattern = re.compile(rf"(^|[\s\[,'\"-]){re.escape(needle)}($|[\s\],'\"])")
    for number, line in enumerate(loaded.text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return 1


def add_builtins(loaded: LoadedSpec, registry: ToolRegistry) -> None:
    """Register the built-in tools the spec lists (tools/builtin.py); a tool of the
    program's own under a built-in's name refuses to load."""
    for index, name in enumerate(loaded.spec.tools):
        builtin = BUILTINS.get(name)
        found = registry.get(name)
        if builtin is None or found is builtin:
            continue
        if found is not None:
            message = f"'{name}' is a built-in tool; a tool of your own cannot take its name"
            problem = SpecProblem(
                loaded.path, _line_of(loaded, name), 1, f"tools[{index}]", message
            )
            raise SpecError([problem])
        registry.register(builtin)


def load_toolsets(loaded: LoadedSpec) -> ToolRegistry:
    """Import each `module:function` in `toolsets`; the function returns tools. The
    built-in tools the spec lists are registered too."""
    registry = ToolRegistry()
    for index, ref in enumerate(loaded.spec.toolsets):
        module_name, _, attr = ref.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
            tools: Iterable[Tool] = factory()
        except Exception as exc:
            problem = SpecProblem(
                loaded.path,
                _line_of(loaded, ref),
                1,
                f"toolsets[{index}]",
                f"cannot load {ref}: {exc}",
            )
            raise SpecError([problem]) from None
        for item in tools:
            registry.register(item)
    add_builtins(loaded, registry)
    return registry


def make_model(loaded: LoadedSpec) -> Model:
    """The spec's model(s); a provider that cannot be set up refuses to load, with the
    line of the model in the spec."""
    try:
        return models_for(loaded.spec)
    except ModelError as exc:
        name = loaded.spec.model.name
        problem = SpecProblem(loaded.path, _line_of(loaded, name), 1, "model", str(exc))
        raise SpecError([problem]) from None


PinnedSource = Callable[[LoadedSpec, object | None], list[Tool]]


def _pinned_source(loaded: LoadedSpec, section: str) -> PinnedSource:
    """The tool source of a spec section whose tools are pinned in the store: `mcp_servers`
    (steward.mcp) or `a2a_agents` (steward.a2a_tools). Its SDK loads only for a spec that
    uses the section; without the extra the spec refuses to load, at the section's line."""
    source: PinnedSource
    try:
        if section == "mcp_servers":
            from steward.mcp import mcp_tools

            source = mcp_tools
        else:
            from steward.a2a_tools import a2a_tools

            source = a2a_tools
    except ImportError as exc:
        sdk, extra = (
            ("the MCP SDK 2.x", "mcp") if section == "mcp_servers" else ("the A2A SDK", "a2a")
        )
        message = f"{section} need {sdk} (pip install 'steward-governance[{extra}]'): {exc}"
        line = _line_of(loaded, f"{section}:")
        raise SpecError([SpecProblem(loaded.path, line, 1, section, message)]) from None
    return source


def _delegation_tools(loaded: LoadedSpec) -> list[Tool]:
    from steward.runtime.delegation import delegation_tools  # it builds on this module

    return delegation_tools(loaded)


def build_agent(
    loaded: LoadedSpec,
    tools: ToolRegistry | Iterable[Tool] | None = None,
    *,
    model: Model | None = None,
    unbound: bool = False,
    db: object | None = None,
) -> AgentRuntime:
    """`unbound`: a listed tool with no implementation is left unbound (its calls are
    denied `tool.unbound`) instead of refusing to load: a program that drives its own
    loop (steward/embed/) binds the tools its framework has, when it has them.
    `db`: where the definitions of the spec's MCP servers' tools and remote A2A agents'
    cards are pinned (the default database when not given); unused without either."""
    registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools or ())
    add_builtins(loaded, registry)
    for section, used in (
        ("mcp_servers", loaded.spec.mcp_servers),
        ("a2a_agents", loaded.spec.a2a_agents),
    ):
        if used:
            for item in _pinned_source(loaded, section)(loaded, db):
                registry.register(item)
    for item in _delegation_tools(loaded):
        if item.name not in registry:
            registry.register(item)
    if loaded.spec.toolsets and any(name not in registry for name in loaded.spec.tools):
        for item in load_toolsets(loaded):
            if item.name not in registry:
                registry.register(item)
    listed = [n for n in loaded.spec.tools if n in registry] if unbound else loaded.spec.tools
    try:
        resolved = registry.resolve(listed)
    except UnknownToolError:
        problems = [
            SpecProblem(
                loaded.path,
                _line_of(loaded, name),
                1,
                f"tools[{i}]",
                f"unknown tool '{name}' (registered: {', '.join(registry.names()) or 'none'})",
            )
            for i, name in enumerate(loaded.spec.tools)
            if name not in registry
        ]
        raise SpecError(problems) from None
    # Tools the spec forbids by name but does not list are still resolved when registered,
    # so their data classes inform `explain`; the policy denies them regardless.
    for name in loaded.spec.decision_authority.forbidden:
        found = registry.get(name)
        if found is not None:
            resolved.setdefault(name, found)
    policy = compile_policy(loaded.spec, loaded.version, resolved)
    chosen = model if model is not None else make_model(loaded)
    return AgentRuntime(loaded, policy, resolved, chosen)
