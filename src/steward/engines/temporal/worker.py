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


def build_worker(
    client: Client,
    db: Database,
    journal: Journal,
    *,
    task_queue: str = TASK_QUEUE,
    max_activations: int = 64,
    label: str = "production",
) -> Worker:
    """`label`: the label whose version a delegation runs of a specialist (as the
    servers' `--label`), else its newest version on record."""
    activities = RunActivities(db, journal, label)
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
    worker = build_worker(client, db, journal, task_queue=task_queue, label=label)
    stop = stop or asyncio.Event()
    async with worker:
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
