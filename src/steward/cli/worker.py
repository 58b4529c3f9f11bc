"""`steward worker`: run a worker of the temporal engine. Start one or more per machine,
all against the deployment's database and one Temporal; they drive every run started
by `steward serve --engine temporal` or `steward demo --engine temporal`."""

from __future__ import annotations

import os
import signal
from enum import StrEnum

import typer

from steward.cli.context import DbOption, console, db_url, handled, journal_for, open_db, run_async


class Engine(StrEnum):
    EMBEDDED = "embedded"  # this process drives runs over the local journal
    TEMPORAL = "temporal"  # `steward worker`s drive them as Temporal workflows


EngineOption = typer.Option(Engine.EMBEDDED, "--engine", help="Who drives the runs.")
TemporalOption = typer.Option(
    "localhost:7233",
    "--temporal",
    envvar="STEWARD_TEMPORAL_ADDRESS",
    help="host:port of the Temporal frontend.",
)
TaskQueueOption = typer.Option(
    "steward-runs",
    "--task-queue",
    envvar="STEWARD_TEMPORAL_TASK_QUEUE",
    help="Temporal task queue.",
)
NamespaceOption = typer.Option("default", "--namespace", help="Temporal namespace.")


def worker(
    db: str | None = DbOption,
    temporal: str = TemporalOption,
    task_queue: str = TaskQueueOption,
    namespace: str = NamespaceOption,
    demo: bool = typer.Option(False, "--demo", help="Also serve the demo agent's tools."),
    label: str = typer.Option(
        "production",
        "--label",
        help="Delegations run the specialist version this label points at (as `steward "
        "serve --label`), else its newest version on record.",
    ),
) -> None:
    """Run a worker of the temporal engine until SIGINT/SIGTERM. Runs in flight are not
    ended: another worker (or this one, restarted) resumes them from the journal."""
    with handled():
        from steward.engines.temporal import require

        require()
        import asyncio

        from steward.engines.temporal.client import connect
        from steward.engines.temporal.worker import run_worker

        if demo:
            from steward.demo.tools import SYSTEMS_ENV, systems_path

            os.environ.setdefault(SYSTEMS_ENV, str(systems_path()))
        database = open_db(db, create=True)

        async def main() -> None:
            client = await connect(temporal, namespace)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            console.print(
                f"steward worker · temporal {temporal} · queue {task_queue} · db {db_url(db)}"
            )
            await run_worker(
                client, database, journal, task_queue=task_queue, stop=stop, label=label
            )

        try:
            with journal_for(database) as journal:
                run_async(main)
        finally:
            database.close()
