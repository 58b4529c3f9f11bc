"""A worker: polls the deployment's task queue and runs run workflows and activations.
Start as many as you like, on as many machines, against one database and one Temporal;
a worker that dies has its activations taken over by another (`steward worker`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

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
) -> Worker:
    activities = RunActivities(db, journal)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RunWorkflow],
        # the workflow uses only temporalio and the plain values of shapes.py; steward's
        # modules (its package imports the store) pass through the sandbox, not reloaded
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("steward")
        ),
        activities=activities.all(),
        max_concurrent_activities=max_activations,
        graceful_shutdown_timeout=timedelta(seconds=2),
    )


async def run_worker(
    client: Client,
    db: Database,
    journal: Journal,
    *,
    task_queue: str = TASK_QUEUE,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (or the task is cancelled); activations still running
    are left to be resumed by another worker, never ended."""
    worker = build_worker(client, db, journal, task_queue=task_queue)
    stop = stop or asyncio.Event()
    async with worker:
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
