"""`steward telemetry follow`: consume the journal from its own process."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from steward.cli.context import DbOption, console, fail, handled, open_db

app = typer.Typer(help="Traces, metrics, logs and alerts.", no_args_is_help=True)


@app.command("follow")
def follow(
    from_start: bool = typer.Option(False, "--from-start", help="Replay the whole journal first."),
    metrics_port: int = typer.Option(
        0, "--metrics-port", min=0, max=65535, help="Serve /metrics (0: off)."
    ),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host"),
    interval: float = typer.Option(0.2, min=0.01, max=60, help="Seconds between polls when idle."),
    db: str | None = DbOption,
) -> None:
    """Feed committed events to the configured consumers (OTLP traces, metrics, JSON logs,
    budget alerts) from this process, so the processes running agents don't pay for them.
    Run agents with STEWARD_TELEMETRY=off to leave the consuming to this one."""
    with handled():
        from prometheus_client import start_http_server

        from steward.telemetry.follower import Follower
        from steward.telemetry.setup import build

        database = open_db(db)
        try:
            telemetry = build()
        except ValueError as exc:
            fail(f"telemetry configuration: {exc}")
        if metrics_port:
            start_http_server(metrics_port, metrics_host, registry=telemetry.metrics.registry)
            console.print(f"serving /metrics on http://{metrics_host}:{metrics_port}/metrics")
        follower = Follower(database, telemetry.consumers(), from_start=from_start)
        stop = threading.Event()

        def stop_now(_signal: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stop_now)
        signal.signal(signal.SIGINT, stop_now)
        console.print(f"following {database.url} from event {follower.cursor}")
        follower.run(stop, interval)
        telemetry.close()
        console.print(f"stopped after {follower.delivered} events")
