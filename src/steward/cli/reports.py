"""`steward costs` and `steward stats AGENT`."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from steward.cli.context import DbOption, console, fail, handled, open_db
from steward.store.costs import cost_report
from steward.store.stats import agent_stats, percentile

_WINDOW = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def costs(
    days: int = typer.Option(7, min=1, max=3660, help="How many days back, today included."),
    agent: str | None = typer.Option(None, help="Only this agent."),
    db: str | None = DbOption,
) -> None:
    """Spend by agent, model, day and tenant, and cost per transaction."""
    with handled():
        report = cost_report(open_db(db), days=days, agent=agent)
        table = Table(title=f"cost over the last {days} day(s)")
        for column in (
            "day",
            "agent",
            "model",
            "tenant",
            "calls",
            "tokens in",
            "tokens out",
            "USD",
            "estimated",
        ):
            table.add_column(
                column,
                justify="right"
                if column in {"calls", "tokens in", "tokens out", "USD", "estimated"}
                else "left",
            )
        for row in report.rows:
            table.add_row(row.day, row.agent, row.model, row.tenant, str(row.calls), str(row.input_tokens),
                          str(row.output_tokens), f"{row.cost_usd:.6f}", str(row.estimated))  # fmt: skip
        console.print(table)
        guessed = sum(r.estimated for r in report.rows)
        if guessed:
            console.print(f"estimated: {guessed} call(s) got no usage from their provider; "
                          "their tokens were counted locally and priced (budgets charged them)")  # fmt: skip
        for name in sorted({r.agent for r in report.rows} | set(report.runs_by_agent)):
            per = report.per_transaction(name)
            shown = "n/a" if per is None else f"${per:.6f}"
            finished = report.runs_by_agent.get(name, 0)
            console.print(
                f"{name}: total ${report.total(name):.6f}, {finished} finished runs, cost per transaction {shown}"
            )


def stats(
    agent: str = typer.Argument(..., help="Agent name."),
    window: str = typer.Option("24h", help="How far back: 30m, 24h, 7d ..."),
    db: str | None = DbOption,
) -> None:
    """Run and tool latency (p50/p95/p99) and the maturity figures of seed 001."""
    with handled():
        match = _WINDOW.match(window)
        if match is None:
            fail(f"--window {window!r}: expected a number and a unit, like 30m, 24h or 7d")
        seconds = int(match.group(1)) * _SECONDS[match.group(2)]
        figures = agent_stats(open_db(db), agent, seconds)
        console.print(f"[bold]{agent}[/] over {window}: {figures.transactions} transaction(s)")
        latency = Table(title="latency (ms)")
        for column in ("what", "n", "p50", "p95", "p99"):
            latency.add_column(column, justify="left" if column == "what" else "right")
        rows = [("run", figures.run_latency_ms)] + [
            (f"tool {t}", v) for t, v in sorted(figures.tool_latency_ms.items())
        ]
        for label, values in rows:
            latency.add_row(label, str(len(values)), _ms(percentile(values, 0.5)), _ms(percentile(values, 0.95)),
                            _ms(percentile(values, 0.99)))  # fmt: skip
        console.print(latency)
        outcome = Table(title="outcomes")
        outcome.add_column("figure")
        outcome.add_column("value", justify="right")
        outcome.add_row(
            "automation rate (resolved without a person)", _pct(figures.automation_rate)
        )
        outcome.add_row("escalation rate", _pct(figures.escalation_rate))
        outcome.add_row(
            f"accuracy (1 - flagged incorrect / answered; {figures.judged} judged)",
            _pct(figures.accuracy),
        )
        per = figures.cost_per_transaction
        outcome.add_row("cost per transaction", "n/a" if per is None else f"${per:.6f}")
        outcome.add_row("availability (runs not failed by the system)", _pct(figures.availability))
        console.print(outcome)
        stage, why = figures.stage()
        console.print(f"maturity stage: [bold]{stage}[/] ({why})")
