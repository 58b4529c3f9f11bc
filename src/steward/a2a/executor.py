"""An A2A task is a governed steward run. `message/send` starts a run of the agent (the
RunService the REST API uses: same gate, policy, budgets, kill switch, journal), tagged
with the caller's identity; the task follows the run:

    running            -> working
    waiting (approval) -> input-required, naming the pending approvals (a person decides
                          them through steward's approval API or console)
    succeeded          -> completed, the answer as the status message and an artifact
    escalated          -> rejected, with the reason (a person takes over)
    not started        -> rejected, with the reason (e.g. the agent's kill switch is off)
    failed             -> failed, with the reason
    cancelled          -> canceled

A decision a reviewer rejected is named in the final message with the reviewer's comment.
`execute` follows the run to its end (the out-of-band pattern of the SDK's contract), so a
further message to the task waits until the run has ended and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from a2a.helpers.proto_helpers import new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, TaskState

from steward.core.errors import StewardError
from steward.security.keys import Principal
from steward.store.approvals import ApprovalRow, list_approvals
from steward.store.runs import RunRow, get_run

if TYPE_CHECKING:
    from steward.server.service import RunService

PRINCIPAL = "steward.principal"  # where the call context carries the authenticated caller
RUN_TAG = "a2a.task"
POLL_SECONDS = 0.5  # a fallback: the journal wakes the executor when the run changes
FINISHED = {"succeeded", "failed", "escalated", "cancelled"}


def run_approvals(service: RunService, row: RunRow, status: str | None) -> list[ApprovalRow]:
    """The approvals of one run (with `status`, or all)."""
    found = list_approvals(service.db, status=status, agent=row.agent, limit=500)
    return [a for a in found if a.run_id == row.id]


def waiting_text(approvals: list[ApprovalRow]) -> str:
    pending = "; ".join(f"{a.tool} (approval {a.id})" for a in approvals)
    return (
        f"waiting for a person to review {pending}; decide it with steward's approval API "
        "(POST /v1/approvals/{id}/decision) or console, and this task continues"
    )


def final_text(row: RunRow, rejected: list[ApprovalRow]) -> str:
    parts = [row.output.strip()] if row.output.strip() else []
    if row.status != "succeeded" and row.reason:
        parts.append(f"{row.reason_code}: {row.reason}" if row.reason_code else row.reason)
    for approval in rejected:
        why = f": {approval.comment}" if approval.comment else ""
        parts.append(f"the review of {approval.tool} was rejected by {approval.decided_by}{why}")
    return "\n".join(parts) or row.status


class StewardExecutor(AgentExecutor):
    """Runs one steward agent for A2A tasks. `service` is read when a task starts (the
    RunService lives for the app's lifespan)."""

    def __init__(self, agent: str, service: Callable[[], RunService]) -> None:
        self.agent = agent
        self._service = service
        self._runs: dict[str, str] = {}  # task id -> run id

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        if context.current_task is None:
            history = [context.message] if context.message is not None else []
            await event_queue.enqueue_event(
                new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=history)
            )
        else:  # a task is one run; a message to it adds nothing: a reviewer decides the
            return  # wait, not the caller (the SDK runs this after the run has ended)
        who = context.call_context.state.get(PRINCIPAL)
        if not isinstance(who, Principal):  # the route authenticates; fail closed anyway
            await updater.reject(self._say(updater, "no authenticated steward principal"))
            return
        text = context.get_user_input()
        if not text.strip():
            await updater.reject(self._say(updater, "send the task as a text part"))
            return
        service = self._service()
        tags = {RUN_TAG: task_id, **who.starter_tags()}
        try:
            run_id = await service.start(self.agent, text, tags)
        except StewardError as exc:  # the kill switch, a store outage: no run, the reason
            await updater.reject(self._say(updater, f"{exc.code}: {exc.message}"))
            return
        self._runs[task_id] = run_id
        try:
            await self._follow(service, run_id, updater)
        finally:
            self._runs.pop(task_id, None)

    async def _follow(self, service: RunService, run_id: str, updater: TaskUpdater) -> None:
        follower = service.follow(run_id)
        shown = ""
        try:
            while True:
                follower.news.clear()  # before reading: news during the read is not lost
                row = await asyncio.to_thread(get_run, service.db, run_id)
                if row.status in FINISHED:
                    await self._finish(service, row, updater)
                    return
                if row.status == "waiting":
                    pending = await asyncio.to_thread(run_approvals, service, row, "pending")
                    text = waiting_text(pending)
                    if pending and text != shown:  # none pending: it is about to resume
                        shown = text
                        await updater.requires_input(self._say(updater, text))
                elif shown != "working":
                    shown = "working"
                    await updater.start_work()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(follower.news.wait(), POLL_SECONDS)
        finally:
            service.unfollow(run_id, follower)

    async def _finish(self, service: RunService, row: RunRow, updater: TaskUpdater) -> None:
        rejected = await asyncio.to_thread(run_approvals, service, row, "rejected")
        text = final_text(row, rejected)
        message = self._say(updater, text)
        if row.status == "succeeded":
            await updater.add_artifact([new_text_part(text)], name="answer")
            await updater.complete(message)
        elif row.status == "escalated":
            await updater.reject(message)
        elif row.status == "cancelled":
            await updater.cancel(message)
        else:
            await updater.failed(message)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        run_id = self._runs.get(context.task_id or "")
        who = context.call_context.state.get(PRINCIPAL)
        by = who.label if isinstance(who, Principal) else "a2a"
        if run_id is not None:
            await self._service().cancel(run_id, by=by, reason="cancelled by the A2A caller")
        await updater.cancel(self._say(updater, f"cancelled by {by}"))

    @staticmethod
    def _say(updater: TaskUpdater, text: str) -> Message:
        return updater.new_agent_message([new_text_part(text)])
