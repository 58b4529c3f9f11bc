"""`steward demo`: the support desk over ~200 bundled tickets, with a summary; with
`--multi-agent`, the same tickets through triage and its specialists, with a row per agent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from steward.cli.context import (
    DbOption,
    console,
    db_url,
    handled,
    journal_for,
    open_db,
    run_async,
)
from steward.cli.worker import Engine, EngineOption, TaskQueueOption, TemporalOption

if TYPE_CHECKING:
    from typing import Any

    from steward.demo.job import DemoReport
    from steward.demo.tickets import Ticket
    from steward.runtime import RunResult
    from steward.store.database import Database
    from steward.store.journal import Journal


def demo(
    db: str | None = DbOption,
    limit: int | None = typer.Option(None, min=1, help="Only the first N tickets."),
    concurrency: int = typer.Option(16, min=1, max=256, help="Runs in flight at once."),
    engine: Engine = EngineOption,
    temporal: str = TemporalOption,
    task_queue: str = TaskQueueOption,
    workers: int = typer.Option(
        1,
        "--workers",
        min=0,
        max=16,
        help="With --engine temporal: workers started in this process (0: `steward worker`s).",
    ),
    multi_agent: bool = typer.Option(
        False,
        "--multi-agent",
        help="Triage hands each ticket to a specialist agent (orders, refunds, account) or "
        "to escalation; the same outcome table, plus a row per agent.",
    ),
) -> None:
    """Govern a support-desk agent over the bundled tickets and summarise what happened."""
    with handled():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from steward.demo.tools import SYSTEMS_ENV, systems_path

        database = open_db(db, create=True)
        systems = systems_path()
        os.environ.setdefault(SYSTEMS_ENV, str(systems))
        who = "triage and its specialists" if multi_agent else "support-desk agent"
        console.print(f"[bold]steward demo[/]: {who}, database {db_url(db)}")
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("governing tickets", total=limit or 200)

            def advance(_ticket: Ticket, _result: RunResult) -> None:
                progress.advance(task)

            with journal_for(database) as journal:
                report = run_async(
                    lambda: _on_engine(
                        engine, temporal, task_queue, workers, database, journal,
                        systems=Path(systems), limit=limit, concurrency=concurrency,
                        on_done=advance, multi_agent=multi_agent,
                    )
                )  # fmt: skip
        _summary(report)


async def _on_engine(
    engine: Engine,
    address: str,
    task_queue: str,
    workers: int,
    database: Database,
    journal: Journal,
    **demo: Any,
) -> DemoReport:
    from steward.demo.job import run_demo

    if engine is Engine.EMBEDDED:
        return await run_demo(database, journal=journal, **demo)
    from steward.engines.temporal import require

    require()
    import contextlib

    from steward.engines.temporal.client import TemporalRuns, connect
    from steward.engines.temporal.worker import build_worker
    from steward.runtime import AgentRuntime

    client = await connect(address)
    runs = TemporalRuns(client, database, journal, task_queue=task_queue)

    async def drive(agent: AgentRuntime, text: str, tags: dict[str, str]) -> RunResult:
        return await runs.run(agent, text, tags=tags)

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(workers):
            await stack.enter_async_context(
                build_worker(client, database, journal, task_queue=task_queue)
            )
        return await run_demo(database, journal=journal, drive=drive, **demo)


def _per_agent(report: object) -> None:
    from rich.table import Table

    from steward.demo import MULTI_AGENT
    from steward.demo.job import DemoReport

    assert isinstance(report, DemoReport)
    table = Table(title="per agent", show_header=True)
    table.add_column("agent")
    table.add_column("runs", justify="right")
    for column in ("resolved", "waiting", "denied, answered", "escalated"):
        table.add_column(column, justify="right")
    table.add_column("denied calls")
    known = [name for name in MULTI_AGENT if name in report.agents]
    for name in known + sorted(set(report.agents) - set(known)):
        tally = report.agents[name]
        outcomes = tally.outcomes
        table.add_row(
            name,
            str(tally.runs),
            str(outcomes.get("resolved autonomously", 0)),
            str(outcomes.get("waiting for approval", 0)),
            str(outcomes.get("denied, answered", 0)),
            str(outcomes.get("escalated", 0)),
            ", ".join(f"{code} {n}" for code, n in tally.denials.most_common()),
        )
    console.print(table)


def _summary(report: object) -> None:
    from rich.table import Table

    from steward.demo.job import DemoReport

    assert isinstance(report, DemoReport)
    total = len(report.results)
    table = Table(title=f"{total} tickets in {report.wall_seconds:.1f}s", show_header=True)
    table.add_column("outcome")
    table.add_column("runs", justify="right")
    table.add_column("detail")
    buckets = report.buckets()
    escalations = report.escalations()
    table.add_row(
        "[green]resolved autonomously[/]", str(buckets.get("resolved autonomously", 0)), ""
    )
    table.add_row(
        "[yellow]waiting for approval[/]",
        str(buckets.get("waiting for approval", 0)),
        "steward approvals list",
    )
    table.add_row("[cyan]denied, then answered[/]", str(buckets.get("denied, answered", 0)), "")
    table.add_row(
        "[magenta]escalated[/]",
        str(buckets.get("escalated", 0)),
        ", ".join(f"{code} {n}" for code, n in escalations.most_common()),
    )
    for other in sorted(
        set(buckets)
        - {"resolved autonomously", "waiting for approval", "denied, answered", "escalated"}
    ):
        table.add_row(f"[red]{other}[/]", str(buckets[other]), "")
    console.print(table)
    denials = Table(title="denied calls, by reason")
    denials.add_column("reason")
    denials.add_column("runs", justify="right")
    for code, count in report.denials().most_common():
        denials.add_row(code, str(count))
    console.print(denials)
    if report.agents:  # the multi-agent mode
        _per_agent(report)
    audit = report.audit
    verified = "[green]verified[/]" if audit is not None and audit.ok else "[red]BROKEN[/]"
    checked = audit.checked if audit is not None else 0
    console.print(
        f"run latency p50 {report.latency_ms(0.50):.1f} ms, p95 {report.latency_ms(0.95):.1f} ms · "
        f"audit chain {verified} ({checked} events)"
    )
    serve = "steward serve --demo --multi-agent" if report.agents else "steward serve --demo"
    console.print(
        "next: [bold]steward runs list[/], [bold]steward runs show RUN[/], "
        "[bold]steward approvals list[/], [bold]steward audit verify[/]; the console: "
        f"[bold]steward keys create --name you --role reviewer[/], then [bold]{serve}[/]"
    )
