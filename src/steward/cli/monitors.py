"""`steward monitors show AGENT`: the drift monitors of an agent, per metric and version."""

from __future__ import annotations

import typer

from steward.cli.context import DbOption, console, fail, handled, open_db
from steward.cli.exits import ExitCode
from steward.cli.render import Column, JsonOption, emit_json, listing, when

app = typer.Typer(help="Drift monitors (control charts per agent version).", no_args_is_help=True)

SERIES_COLUMNS = (
    Column("metric"),
    Column("version"),
    Column("chart"),
    Column("state"),
    Column("baseline", right=True),
    Column("statistic", "statistic / limit", right=True),
    Column("observations", "runs", right=True),
    Column("alarms", right=True),
)
ALARM_COLUMNS = (
    Column("ts", "when", show=when),
    Column("metric"),
    Column("version"),
    Column("direction", "went"),
    Column("change"),
    Column("rollback", wrap=True),
)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command("show")
def show(agent: str, db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """Each monitored metric of AGENT by version: warm-up or in control, the chart's
    statistic against its limit, alarms, and the rollback command after an alarm
    (--json: the series with their chart points)."""
    with handled():
        from steward.monitor.view import agent_monitors

        view = agent_monitors(open_db(db), agent)
        if not view.metrics:
            fail(
                f"no drift monitors on record for agent {agent!r}: declare `monitors:` in its "
                "spec and serve it",
                ExitCode.NOT_FOUND,
            )
        if as_json:
            emit_json(view.to_json())
            return
        rows = []
        for metric in view.metrics:
            for s in metric.segments:
                state = (
                    f"warming {s.warm_count}/{s.warmup}"
                    if s.warming
                    else ("[red]ALARM[/]" if s.alarms else "in control")
                )
                rows.append({
                    "metric": metric.metric, "version": s.version, "chart": s.chart,
                    "state": state, "baseline": _number(s.baseline),
                    "statistic": "-" if s.warming else f"{s.statistic:+.2f} / ±{s.limit:.2f}",
                    "observations": s.observations, "alarms": s.alarms,
                })  # fmt: skip
        listing(rows, SERIES_COLUMNS, title=f"drift monitors of {agent}", as_json=False)
        if view.alarms:
            alarms = [
                {
                    "ts": a.ts,
                    "metric": a.metric,
                    "version": a.version,
                    "direction": a.direction,
                    "change": f"{_number(a.baseline)} -> {_number(a.recent)}",
                    "rollback": a.rollback or "(no earlier version)",
                }
                for a in view.alarms
            ]
            listing(alarms, ALARM_COLUMNS, title=f"{len(alarms)} alarm(s)", as_json=False)
        else:
            console.print("no alarms")
