"""`steward validate` and `steward explain`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from steward.cli.context import console, fail, handled
from steward.core.decision import Verdict
from steward.core.messages import ToolCall
from steward.policy import PolicyContext, compile_policy
from steward.runtime.agent import load_toolsets
from steward.spec import load_spec
from steward.tools.builtin import BUILTINS

_COLOURS = {
    Verdict.ALLOW: "green",
    Verdict.REVIEW: "yellow",
    Verdict.DENY: "red",
    Verdict.TRANSFORM: "cyan",
}


def validate(file: Path = typer.Argument(..., help="Agent spec (YAML).")) -> None:
    """Validate a spec: every problem is reported with file, line, column and field."""
    with handled():
        loaded = load_spec(file)
        registry = load_toolsets(loaded)
        spec = loaded.spec
        untiered = [
            t
            for t in spec.tools
            if spec.decision_authority.tier_of(t) is None and t not in BUILTINS
        ]
        console.print(
            f"[green]ok[/] {file}: agent [bold]{spec.name}[/] version {loaded.version}, "
            f"{len(spec.tools)} tools, {len(spec.conditions)} conditions"
        )
        if spec.toolsets:
            missing = [t for t in spec.tools if t not in registry]
            if missing:
                fail(f"{file}: tools not provided by its toolsets: {', '.join(missing)}")
        for name in untiered:
            console.print(f"[yellow]note[/] '{name}' is in no decision tier, so it is forbidden")


def explain(
    file: Path = typer.Argument(..., help="Agent spec (YAML)."),
    tool: str = typer.Argument(..., help="Tool name."),
    args: str = typer.Option("{}", "--args", help="Arguments as a JSON object."),
    source: list[str] = typer.Option(
        [], "--source", help="Provenance, as ARG=user|config|tool|model."
    ),
) -> None:
    """Show the decision policy would make for a call, and the rule that made it."""
    with handled():
        try:
            arguments: Any = json.loads(args)
        except json.JSONDecodeError as exc:
            fail(f"--args is not valid JSON: {exc.msg} at column {exc.colno}")
        if not isinstance(arguments, dict):
            fail("--args must be a JSON object, like '{\"amount\": 120}'")
        sources: dict[str, str] = {}
        for item in source:
            name, _, origin = item.partition("=")
            if origin not in {"user", "config", "tool", "model", "human"}:
                fail(f"--source {item!r}: expected ARG=user|config|tool|model|human")
            sources[name] = origin
        loaded = load_spec(file)
        registry = load_toolsets(loaded)
        tools = {t.name: t for t in registry}
        policy = compile_policy(loaded.spec, loaded.version, tools)
        call = ToolCall("explain", tool, arguments)
        implementation = tools.get(tool)
        if implementation is not None:
            problem = implementation.validate_arguments(arguments)
            if problem is not None:
                console.print(f"[bold red]deny[/]  {tool} {json.dumps(arguments)}")
                console.print(f"  [red]args.invalid[/]: {escape(problem)}", highlight=False)
                raise typer.Exit(0)
        decision = policy.evaluate(call, PolicyContext(sources=sources))
        colour = _COLOURS[decision.verdict]
        console.print(f"[bold {colour}]{decision.verdict.value}[/]  {tool} {json.dumps(arguments)}")
        for reason in decision.reasons:
            console.print(
                f"  [{colour}]{reason.code}[/]: {escape(reason.message)}", highlight=False
            )
        if decision.rule_ids:
            console.print(f"  rule: {', '.join(decision.rule_ids)}", highlight=False)
        if implementation is None and tool in loaded.spec.tools:
            console.print(
                "  [dim]no tool metadata (no toolsets): data-class checks assume every class[/]"
            )
