"""`steward costs` and `steward stats AGENT`."""

from __future__ import annotations

import re

import typer

from steward.cli.context import DbOption, console, fail, handled, open_db
from steward.cli.records import Record
from steward.cli.render import JsonOption, report

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
    as_json: bool = JsonOption,
) -> None:
    """Spend by agent, model, day and tenant, and cost per transaction (--json:
    {"days", "agent", "rows": [...], "agents": [...]})."""
    with handled():
        from steward.store.costs import cost_report

        found = cost_report(open_db(db), days=days, agent=agent)
        names = sorted({r.agent for r in found.rows} | set(found.runs_by_agent))
        data: Record = {
            "days": days,
            "agent": agent,
            "rows": [
                {"day": r.day, "agent": r.agent, "model": r.model, "tenant": r.tenant,
                 "calls": r.calls, "input_tokens": r.input_tokens,
                 "output_tokens": r.output_tokens, "cost_usd": r.cost_usd,
                 "estimated": r.estimated}
                for r in found.rows
            ],
            "agents": [
                {"agent": name, "total_usd": found.total(name),
                 "finished_runs": found.runs_by_agent.get(name, 0),
                 "cost_per_transaction_usd": found.per_transaction(name)}
                for name in names
            ],
        }  # fmt: skip
        report(data, as_json, _print_costs)


def _print_costs(data: Record) -> None:
    from rich.table import Table

    table = Table(title=f"cost over the last {data['days']} day(s)")
    numeric = {"calls", "tokens in", "tokens out", "USD", "estimated"}
    for column in ("day", "agent", "model", "tenant", "calls", "tokens in", "tokens out", "USD",
                   "estimated"):  # fmt: skip
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in data["rows"]:
        table.add_row(row["day"], row["agent"], row["model"], row["tenant"], str(row["calls"]),
                      str(row["input_tokens"]), str(row["output_tokens"]),
                      f"{row['cost_usd']:.6f}", str(row["estimated"]))  # fmt: skip
    console.print(table)
    guessed = sum(r["estimated"] for r in data["rows"])
    if guessed:
        console.print(f"estimated: {guessed} call(s) got no usage from their provider; "
                      "their tokens were counted locally and priced (budgets charged them)")  # fmt: skip
    for each in data["agents"]:
        per = each["cost_per_transaction_usd"]
        shown = "n/a" if per is None else f"${per:.6f}"
        console.print(
            f"{each['agent']}: total ${each['total_usd']:.6f}, {each['finished_runs']} finished "
            f"runs, cost per transaction {shown}"
        )


def stats(
    agent: str = typer.Argument(..., help="Agent name."),
    window: str = typer.Option("24h", help="How far back: 30m, 24h, 7d ..."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Run and tool latency (p50/p95/p99), automation, escalation, accuracy, cost per
    transaction and availability, and the maturity stage they meet: proof of concept
    (>85% accuracy), limited production (>92% accuracy, <10% escalation). --json: see
    README, section CLI."""
    with handled():
        from steward.store.stats import agent_stats

        match = _WINDOW.match(window)
        if match is None:
            fail(f"--window {window!r}: expected a number and a unit, like 30m, 24h or 7d")
        seconds = int(match.group(1)) * _SECONDS[match.group(2)]
        figures = agent_stats(open_db(db), agent, seconds)

        stage, why = figures.stage()
        data: Record = {
            "agent": agent,
            "window": window,
            "window_seconds": seconds,
            "transactions": figures.transactions,
            "statuses": dict(figures.statuses),
            "latency_ms": {
                "run": figures.run_latency.as_dict(),
                "tools": {t: v.as_dict() for t, v in sorted(figures.tool_latency.items())},
            },
            "automation_rate": figures.automation_rate,
            "escalation_rate": figures.escalation_rate,
            "accuracy": figures.accuracy,
            "judged": figures.judged,
            "cost_per_transaction_usd": figures.cost_per_transaction,
            "availability": figures.availability,
            "stage": {"name": stage, "why": why},
        }
        report(data, as_json, _print_stats)


def _print_stats(data: Record) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{data['agent']}[/] over {data['window']}: {data['transactions']} transaction(s)"
    )
    latency = Table(title="latency (ms)")
    for column in ("what", "n", "p50", "p95", "p99"):
        latency.add_column(column, justify="left" if column == "what" else "right")
    rows = [("run", data["latency_ms"]["run"])] + [
        (f"tool {t}", v) for t, v in data["latency_ms"]["tools"].items()
    ]
    for label, v in rows:
        latency.add_row(label, str(v["n"]), _ms(v["p50"]), _ms(v["p95"]), _ms(v["p99"]))
    console.print(latency)
    outcome = Table(title="outcomes")
    outcome.add_column("figure")
    outcome.add_column("value", justify="right")
    outcome.add_row("automation rate (resolved without a person)", _pct(data["automation_rate"]))
    outcome.add_row("escalation rate", _pct(data["escalation_rate"]))
    outcome.add_row(
        f"accuracy (1 - flagged incorrect / answered; {data['judged']} judged)",
        _pct(data["accuracy"]),
    )
    per = data["cost_per_transaction_usd"]
    outcome.add_row("cost per transaction", "n/a" if per is None else f"${per:.6f}")
    outcome.add_row("availability (runs not failed by the system)", _pct(data["availability"]))
    console.print(outcome)
    console.print(f"maturity stage: [bold]{data['stage']['name']}[/] ({data['stage']['why']})")
