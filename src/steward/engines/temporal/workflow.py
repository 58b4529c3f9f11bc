"""The run workflow: deterministic code that only orchestrates.

Policy decisions do not run here. They read state shared by the whole deployment and
changing under it (kill switch, rate limits, budgets, breakers), so as workflow code
they could not replay deterministically. They run inside the activation activity, where
the gate records each decision in steward's journal before acting on it; a retried
activation replays the recorded decisions from the journal, and a replayed workflow
gets its activities' recorded results from Temporal's history: nothing re-decides.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType, is_cancelled_exception
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from steward.engines.temporal.shapes import Activation, CancelRequest, Drive, RunStart

DRIVE = "steward.drive"
EXPIRE = "steward.expire"
CANCEL = "steward.cancel"
TIMED_OUT = "steward.timed_out"

HEARTBEAT = timedelta(seconds=4)  # a killed worker's activation moves on after this
GRACE = 10.0  # seconds past max_run_seconds before the durable timer ends an activation
# Retrying an activation is safe: it resumes the run from the journal, where a keyed
# call's result or an unkeyed write's intent without a result (outcome unknown) is found.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=2)
)
SMALL = timedelta(seconds=30)


@workflow.defn(name="steward.run")
class RunWorkflow:
    def __init__(self) -> None:
        self._activations: list[Activation] = []
        self._decisions = 0
        self._why = ""
        self._cancel: CancelRequest | None = None

    @workflow.signal(name="decided")
    def decided(self, why: str) -> None:
        """A person decided one of the run's approvals (or it expired): drive it on."""
        self._decisions += 1
        self._why = why

    @workflow.signal(name="cancelling")
    def cancelling(self, request: CancelRequest) -> None:
        """Who cancels and why; the workflow's cancellation follows."""
        self._cancel = request

    @workflow.update(name="settled")
    async def settled(self, after: int) -> Activation:
        """The outcome of the first activation after the `after`th: finished or waiting."""
        await workflow.wait_condition(lambda: len(self._activations) > after)
        return self._activations[after]

    @workflow.query(name="activations")
    def activations(self) -> int:
        return len(self._activations)

    @workflow.query(name="activation")
    def activation(self, n: int) -> list[Activation]:
        """The nth activation's outcome, if it ended (also once the workflow closed)."""
        return self._activations[n : n + 1]

    @workflow.run
    async def run(self, start: RunStart) -> Activation:
        reason = ""
        try:
            while True:
                seen = self._decisions
                done = await self._drive(start, reason)
                self._activations.append(done)
                if done.status != "waiting":
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return done
                reason = await self._wait_for_decision(start, done, seen)
        except BaseException as exc:
            if not is_cancelled_exception(exc):  # the activation's own cancel, included
                raise
            request = self._cancel or CancelRequest(
                start.run_id, "temporal", "the run's workflow was cancelled"
            )
            done = await workflow.execute_activity(
                CANCEL, request, start_to_close_timeout=SMALL, result_type=Activation
            )
            self._activations.append(done)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise asyncio.CancelledError(request.reason) from exc  # the workflow: cancelled

    async def _drive(self, start: RunStart, reason: str) -> Activation:
        try:
            result: Activation = await workflow.execute_activity(
                DRIVE,
                Drive(start, reason),
                schedule_to_close_timeout=timedelta(seconds=start.max_run_seconds + GRACE),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                result_type=Activation,
            )
            return result
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ActivityTimeout) and cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
                # max_run_seconds, kept by the server: no worker finished the activation
                timed_out: Activation = await workflow.execute_activity(
                    TIMED_OUT, start, start_to_close_timeout=SMALL, result_type=Activation
                )
                return timed_out
            raise

    async def _wait_for_decision(self, start: RunStart, waiting: Activation, seen: int) -> str:
        """Wait for a decision, or until the earliest pending approval expires (a durable
        timer); then expire what is overdue and drive the run on without it."""
        timeout = None
        if waiting.expires_at is not None:
            timeout = max(1.0, waiting.expires_at - workflow.now().timestamp())
        try:
            await workflow.wait_condition(lambda: self._decisions > seen, timeout=timeout)
            return self._why
        except TimeoutError:  # the durable timer fired
            await workflow.execute_activity(EXPIRE, start.run_id, start_to_close_timeout=SMALL)
            return "approval expired (durable timer)"
