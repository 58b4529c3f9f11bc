"""`steward eval run|capture`: evaluate an agent version on a suite; turn feedback and a
sample of production runs into candidate cases for a person to review."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from steward.cli.context import DbOption, console, fail, handled, open_db, run_async
from steward.cli.exits import ExitCode
from steward.cli.identity import KEY_ENV

if TYPE_CHECKING:
    from steward.evals.results import CaseResult, Regressions, SuiteResult
    from steward.spec.models import LoadedSpec

app = typer.Typer(
    help="Evaluation suites: run them, capture candidate cases.", no_args_is_help=True
)

_OUTCOME = {
    "pass": "[green]pass[/]",
    "fail": "[red]FAIL[/]",
    "uncertain": "[yellow]uncertain[/]",
    "error": "[red]ERROR[/]",
}


def _who(db: Any, key: str | None) -> str:
    """Who recorded a result: the key's principal, or the local user (the CLI writes the
    database directly; whoever can write it is trusted with it)."""
    if key:
        from steward.cli.identity import acting_as

        return acting_as(db, key).label
    return f"local:{getpass.getuser()}"


@app.command("run")
def run(
    suite_path: Path = typer.Argument(..., metavar="SUITE", help="The suite's YAML file."),
    agent: Path = typer.Option(..., "--agent", "-a", help="The agent's spec file."),
    out: Path | None = typer.Option(None, "--out", help="Write the result as JSON here."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here (CI)."),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="A result JSON to gate regressions against."
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Record the result in the database (promotion reads it)."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar=KEY_ENV, help="Record as this key's principal."
    ),
    db: str | None = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run every case of SUITE against the agent version in --agent (tools in the suite's
    sandbox or fixtures). Exit 1 when a required case does not pass or, with --baseline,
    on a regression; 0 otherwise."""
    with handled():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from steward.evals.load import load_suite
        from steward.evals.results import compare, read_result
        from steward.evals.run import evaluate
        from steward.spec.loader import load_spec

        suite = load_suite(suite_path)
        loaded = load_spec(agent)
        before = read_result(baseline) if baseline is not None else None
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task(
                f"{suite.name} x {loaded.spec.name}@{loaded.version}", total=len(suite.cases)
            )

            def advance(_case: CaseResult) -> None:
                progress.advance(task)

            result = run_async(lambda: evaluate(suite, loaded, on_case=advance))
        regressions = compare(before, result) if before is not None else None
        if out is not None:
            result.write_json(out)
        if junit is not None:
            result.write_junit(junit)
        recorded = _record(db, key, result, loaded) if record else None
        if as_json:
            data = result.to_json()
            data["recorded"] = recorded
            data["regressions"] = regressions.as_dict() if regressions else None
            print(json.dumps(data, indent=2))
        else:
            _table(result, regressions, recorded)
        if not result.passed or (regressions is not None and regressions.any):
            raise typer.Exit(ExitCode.FAILED)


def _record(db: str | None, key: str | None, result: SuiteResult, loaded: LoadedSpec) -> str:
    """The result on record, with the version it evaluated (so it can be promoted and
    served from the store)."""
    from steward.store.evaluations import record_eval
    from steward.store.runs import save_agent_version

    database = open_db(db, create=True)
    try:
        source = loaded.prompt
        save_agent_version(
            database,
            loaded.spec.name,
            loaded.version,
            loaded.text,
            (source.path, source.text) if source is not None else None,
        )
        summary = result.summary()
        row = record_eval(
            database,
            agent=result.agent,
            version=result.version,
            suite=result.suite,
            passed=result.passed,
            required_passed=summary["required_passed"],
            required_total=summary["required_total"],
            scored_rate=summary["scored_rate"],
            summary=json.dumps(result.to_json()),
            by=_who(database, key),
        )
        return row.id
    finally:
        database.close()


def _table(result: SuiteResult, regressions: Regressions | None, recorded: str | None) -> None:
    from rich.table import Table

    table = Table(
        title=f"{result.suite} · {result.agent}@{result.version} · systems: {result.systems}"
    )
    for column in ("case", "kind", "outcome", "run status", "ms", "problems"):
        table.add_column(
            column,
            justify="right" if column == "ms" else "left",
            overflow="fold" if column == "problems" else "ellipsis",
        )
    for case in result.cases:
        table.add_row(
            case.id,
            "required" if case.required else "scored",
            _OUTCOME.get(case.outcome, case.outcome),
            case.status,
            f"{case.seconds * 1000:.0f}",
            "; ".join(case.problems())[:300],
        )
    console.print(table)
    s = result.summary()
    rate = "-" if s["scored_rate"] is None else f"{s['scored_rate']:.0%}"
    verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    console.print(
        f"{verdict}: required {s['required_passed']}/{s['required_total']} · scored "
        f"{s['scored_passed']}/{s['scored_total']} ({rate}) · uncertain {s['uncertain']} · "
        f"{result.seconds:.1f}s"
    )
    if regressions is not None:
        if regressions.cases:
            console.print(
                f"[red]regressions[/]: {', '.join(regressions.cases)} passed in the baseline"
            )
        if regressions.scored_drop is not None:
            state = "[red]regressed[/]" if regressions.scored_regressed else "within noise"
            console.print(
                f"scored pass rate: dropped {regressions.scored_drop:+.1%} "
                f"(noise ±{regressions.scored_noise:.1%}): {state}"
            )
    if recorded:
        console.print(
            f"recorded as {recorded}: promote with steward agents promote "
            f"{result.agent} {result.version} --to production"
        )


@app.command("capture")
def capture(
    agent: str = typer.Argument(..., help="The agent whose runs to capture."),
    out: Path = typer.Option(..., "--out", help="Write the candidate cases (YAML) here."),
    sample: float = typer.Option(
        0.0, "--sample", min=0.0, max=1.0, help="Also capture this share of finished runs."
    ),
    limit: int = typer.Option(500, "--limit", min=1, help="Look at this many recent runs."),
    db: str | None = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print what was captured as JSON."),
) -> None:
    """Candidate cases from production: every run whose latest feedback is `incorrect`
    (its correction becomes the expected answer) and a deterministic sample of finished
    runs (their outcome as observed). A person reviews the file before it joins a suite."""
    with handled():
        from steward.evals.capture import capture_candidates, render_candidates

        database = open_db(db)
        try:
            found = capture_candidates(database, agent, sample=sample, limit=limit)
        finally:
            database.close()
        if not found:
            fail(
                f"no runs of {agent} to capture (no incorrect feedback; sample {sample:g})",
                ExitCode.NOT_FOUND,
            )
        out.write_text(render_candidates(agent, found), encoding="utf-8")
        if as_json:
            print(json.dumps([c.as_dict() for c in found], indent=2))
            return
        flagged = sum(c.source == "feedback" for c in found)
        console.print(
            f"{len(found)} candidate case(s) in {out}: {flagged} from incorrect "
            f"feedback, {len(found) - flagged} sampled; review them, then move the "
            "ones you keep into a suite"
        )
