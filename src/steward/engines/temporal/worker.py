"""A worker: polls the deployment's task queue and runs run workflows and activations.
Start as many as you like, on as many machines, against one database and one Temporal;
a worker that dies has its activations taken over by another (`steward worker`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from steward.engines.temporal import TASK_QUEUE
from steward.engines.temporal.activities import RunActivities
from steward.engines.temporal.workflow import RunWorkflow
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.token_relay import TokenRelay


def build_worker(
    client: Client,
    db: Database,
    journal: Journal,
    *,
    task_queue: str = TASK_QUEUE,
    max_activations: int = 64,
    label: str = "production",
    relay: TokenRelay | None = None,
) -> Worker:
    """`label`: the label whose version a delegation runs of a specialist (as the
    servers' `--label`), else its newest version on record. `relay`: the model's text
    chunks go there, for the servers' followers (PostgreSQL)."""
    activities = RunActivities(db, journal, label, relay)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RunWorkflow],
        # The workflow (workflow.py) is small, uses only temporalio and the plain values
        # of shapes.py, and does no I/O. The sandbox, which would catch a mistake there,
        # costs a fresh module environment per run: its first workflow task waited 15 s
        # behind the others at 16 runs in flight on 2 CPUs (benchmarks/bench_engines.py).
        workflow_runner=UnsandboxedWorkflowRunner(),
        activities=activities.all(),
        max_concurrent_activities=max_activations,
        graceful_shutdown_timeout=timedelta(seconds=2),
        # a dead worker's cached workflows move to the others after this, not the 10 s default
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
    )


async def run_worker(
    client: Client,
    db: Database,
    journal: Journal,
    *,
    task_queue: str = TASK_QUEUE,
    stop: asyncio.Event | None = None,
    label: str = "production",
) -> None:
    """Run until `stop` is set (or the task is cancelled); activations still running
    are left to be resumed by another worker, never ended."""
    relay = TokenRelay(db).start() if db.dialect == "postgresql" else None
    worker = build_worker(client, db, journal, task_queue=task_queue, label=label, relay=relay)
    stop = stop or asyncio.Event()
    try:
        async with worker:
            with contextlib.suppress(asyncio.CancelledError):
                await stop.wait()
    finally:
        if relay is not None:
            await asyncio.to_thread(relay.close)
