"""`steward validate` and `steward explain`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from steward.cli.context import console, fail, handled
from steward.cli.exits import ExitCode
from steward.cli.records import Record
from steward.cli.render import STATUS_STYLE, JsonOption, report
from steward.core.agent_state import Autonomy

SOURCES = ("user", "config", "tool", "model", "human")


def validate(
    file: Path = typer.Argument(..., help="Agent spec (YAML)."), as_json: bool = JsonOption
) -> None:
    """Validate a spec: every problem is reported with file, line, column and field
    (--json: {"file", "agent", "version", "tools", "conditions", "untiered"})."""
    with handled():
        from steward.runtime.agent import load_toolsets
        from steward.spec import load_spec
        from steward.tools.builtin import BUILTINS

        loaded = load_spec(file)
        registry = load_toolsets(loaded)
        spec = loaded.spec
        untiered = [
            t
            for t in spec.tools
            if spec.decision_authority.tier_of(t) is None and t not in BUILTINS
        ]
        if spec.toolsets:
            missing = [  # an MCP server's tools are listed when the agent is built
                t
                for t in spec.tools
                if t not in registry and t.partition(".")[0] not in spec.mcp_servers
            ]
            if missing:
                fail(f"{file}: tools not provided by its toolsets: {', '.join(missing)}")
        data: Record = {
            "file": str(file),
            "agent": spec.name,
            "version": loaded.version,
            "tools": len(spec.tools),
            "conditions": len(spec.conditions),
            "untiered": untiered,
        }

        def human(_data: Record) -> None:
            console.print(
                f"[green]ok[/] {file}: agent [bold]{spec.name}[/] version {loaded.version}, "
                f"{len(spec.tools)} tools, {len(spec.conditions)} conditions"
            )
            for name in untiered:
                console.print(
                    f"[yellow]note[/] '{name}' is in no decision tier, so it is forbidden"
                )

        report(data, as_json, human)


def explain(
    file: Path = typer.Argument(..., help="Agent spec (YAML)."),
    tool: str = typer.Argument(..., help="Tool name."),
    args: str = typer.Option("{}", "--args", help="Arguments as a JSON object."),
    source: list[str] = typer.Option(
        [], "--source", help="Provenance, as ARG=user|config|tool|model|human."
    ),
    mode: Autonomy = typer.Option(Autonomy.SUPERVISED, "--mode", help="The agent's autonomy."),
    as_json: bool = JsonOption,
) -> None:
    """Show the decision the gate would make for a call (kill switch, validate, egress,
    policy, autonomy; nothing runs), and the rule that made it. Exits 4 on deny.
    --json: {"tool", "arguments", "verdict", "stage", "rules", "reasons", "risk"}."""
    with handled():
        from rich.markup import escape

        from steward.cli.policy import Decider, decision_record

        try:
            arguments: Any = json.loads(args)
        except json.JSONDecodeError as exc:
            fail(f"--args is not valid JSON: {exc.msg} at column {exc.colno}")
        if not isinstance(arguments, dict):
            fail("--args must be a JSON object, like '{\"amount\": 120}'")
        sources: dict[str, str] = {}
        for item in source:
            name, _, origin = item.partition("=")
            if origin not in SOURCES:
                fail(f"--source {item!r}: expected ARG={'|'.join(SOURCES)}")
            sources[name] = origin
        decider = Decider.load(file)
        found = decider.decide(tool, arguments, sources, mode)
        data: Record = {"tool": tool, "arguments": arguments, **decision_record(found)}

        def human(data: Record) -> None:
            colour = STATUS_STYLE.get(data["verdict"], "white")
            console.print(
                f"[bold {colour}]{data['verdict']}[/]  {tool} {escape(json.dumps(arguments))}"
            )
            for reason in data["reasons"]:
                console.print(
                    f"  [{colour}]{reason['code']}[/]: {escape(reason['message'])}",
                    highlight=False,
                )
            if data["rules"]:
                console.print(f"  rule: {', '.join(data['rules'])}", highlight=False)
            console.print(f"  [dim]decided at the gate's {data['stage']} stage[/]")

        report(data, as_json, human)
        if found.decision.verdict.value == "deny":
            raise typer.Exit(int(ExitCode.DENIED))
