"""`steward policy test FILE`, and the one way the CLI decides a call without running
it (`explain` too): the spec's compiled policy and tools through the gate's deciding
stages (steward.gate.dry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from steward.cli.context import console, fail, handled, run_async
from steward.cli.exits import ExitCode
from steward.cli.records import Record
from steward.cli.render import Column, JsonOption, listing, status

if TYPE_CHECKING:
    from steward.core.agent_state import Autonomy
    from steward.gate.dry import DryDecision
    from steward.policy import Policy
    from steward.spec.models import LoadedSpec
    from steward.tools.base import Tool

app = typer.Typer(help="Test a spec's policy against expected decisions.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class Decider:
    """A spec, its compiled policy and bound tools: decides calls as the gate would."""

    loaded: LoadedSpec
    policy: Policy
    tools: Mapping[str, Tool]

    @classmethod
    def load(cls, file: Path) -> Decider:
        from steward.policy import compile_policy
        from steward.runtime.agent import load_toolsets
        from steward.spec import load_spec

        loaded = load_spec(file)
        tools = {t.name: t for t in load_toolsets(loaded)}
        return cls(loaded, compile_policy(loaded.spec, loaded.version, tools), tools)

    def decide(
        self,
        tool: str,
        arguments: dict[str, Any],
        sources: Mapping[str, str],
        mode: Autonomy | None = None,
        enabled: bool = True,
    ) -> DryDecision:
        from steward.core.agent_state import Autonomy
        from steward.core.messages import Source, ToolCall
        from steward.gate.dry import decide_dry

        call = ToolCall("dry", tool, arguments)
        origins = {name: Source(origin) for name, origin in sources.items()}
        return run_async(lambda: decide_dry(
            self.policy, self.tools, call, sources=origins,
            mode=mode or Autonomy.SUPERVISED, enabled=enabled,
        ))  # fmt: skip


def decision_record(found: DryDecision) -> Record:
    decision = found.decision
    return {
        "verdict": decision.verdict.value,
        "stage": found.stage,
        "rules": list(decision.rule_ids),
        "reasons": [{"code": r.code, "message": r.message} for r in decision.reasons],
        "risk": decision.risk,
    }


def _result(value: Any) -> str:
    return "[green]pass[/]" if value else "[bold red]FAIL[/]"


CASE_COLUMNS = (
    Column("line", right=True),
    Column("name", wrap=True),
    Column("tool"),
    Column("expect", show=status),
    Column("verdict", "got", show=status),
    Column("rules", "rule", show=lambda v: ", ".join(v) or "-", wrap=True),
    Column("ok", "result", show=_result),
)


@app.command("test")
def test(
    file: Path = typer.Argument(..., help="A YAML list of calls with expected decisions."),
    spec: Path | None = typer.Option(
        None, "--spec", help="The agent spec for cases that name none (relative: to the cwd)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Decide every call in FILE as the gate would (kill switch, validate, egress, policy,
    autonomy) and compare with its `expect` verdict and `rule`. Exit 0 when all pass, 1
    on a mismatch, 2 when FILE or a spec has a problem (located file:line:column: field).
    --json: {"file", "passed", "failed", "cases": [...]}; format: README, section CLI."""
    with handled():
        from steward.core.errors import SpecError, SpecFileMissing, SpecProblem
        from steward.policy.cases import load_cases
        from steward.spec.loader import field_path, locate

        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecFileMissing([SpecProblem(str(file), 0, 0, "", "no such file")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError([SpecProblem(str(file), 0, 0, "", f"cannot read: {exc}")]) from None
        cases, marks = load_cases(text, str(file))
        if not cases:
            fail(f"{file}: no calls to test", ExitCode.USAGE)
        deciders: dict[Path, Decider] = {}
        problems: list[SpecProblem] = []
        chosen: list[Path] = []
        for index, case in enumerate(cases):
            if case.spec is not None:
                chosen.append(file.parent / case.spec)
            elif spec is not None:
                chosen.append(spec)
            else:
                line, column = locate(marks, (index,))
                problems.append(SpecProblem(str(file), line, column, field_path((index, "spec")),
                                            "which agent spec? give `spec:` here or --spec"))  # fmt: skip
        if problems:
            raise SpecError(problems)
        records: list[Record] = []
        for index, (case, path) in enumerate(zip(cases, chosen, strict=True)):
            decider = deciders.get(path)
            if decider is None:
                decider = deciders[path] = Decider.load(path)
            found = decider.decide(case.tool, case.arguments, case.context.sources,
                                   case.context.autonomy, case.context.enabled)  # fmt: skip
            got = decision_record(found)
            ok = got["verdict"] == case.expect.value and (
                case.rule is None or case.rule in got["rules"]
            )
            records.append({
                "index": index,
                "line": locate(marks, (index,))[0],
                "name": case.name,
                "spec": str(path),
                "tool": case.tool,
                "expect": case.expect.value,
                "expected_rule": case.rule,
                **got,
                "ok": ok,
            })  # fmt: skip
        failed = [r for r in records if not r["ok"]]
        if as_json:
            from steward.cli.render import emit_json

            emit_json({"file": str(file), "passed": len(records) - len(failed),
                       "failed": len(failed), "cases": records})  # fmt: skip
        else:
            title = f"{file}: {len(records) - len(failed)} passed, {len(failed)} failed"
            listing(records, CASE_COLUMNS, title=title, as_json=False)
            for record in failed:
                reasons = "; ".join(f"{r['code']}: {r['message']}" for r in record["reasons"])
                console.print(
                    f"[red]{file}:{record['line']}[/] {record['tool']}: expected "
                    f"{record['expect']}{_rule(record['expected_rule'])}, got {record['verdict']}"
                    f" at {record['stage']} ({reasons})",
                    highlight=False,
                )
        if failed:
            raise typer.Exit(int(ExitCode.FAILED))


def _rule(rule: str | None) -> str:
    return f" by {rule}" if rule else ""
