"""A spec's `a2a_agents` → the tools `a2a.<name>`, pinned and governed.

Each call (run only by the gate's execute stage) fetches the remote card again, checks
its signature and observes its pin (store/mcp_pins.py, key `a2a.<name>`): a card that
changed or whose signature does not verify is quarantined (`a2a.card_changed`,
`a2a.bad_signature`) and the call refused; the tool is then held (hidden from the model,
its calls denied by policy) until an admin approves the card it shows
(`steward mcp pins approve <agent> a2a.<name>`). Then the message is sent with the SDK's
client and the remote task followed to its end:

    completed       -> the result: {"agent", "task_id", "state", "answer"}
    input-required  -> the call keeps waiting (the remote steward waits for its reviewer)
                       until `call_timeout_seconds`; then the remote task is cancelled and
                       the call fails `a2a.input_required` (never retried)
    rejected/failed/canceled -> the call fails `a2a.task_<state>` with the remote's text

The answer is untrusted content: the execute stage scans it as any tool result.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from a2a.client import ClientConfig, create_client
from a2a.client.client import Client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)

from steward.a2a_tools.card import SeenCard, fetch_card
from steward.core.errors import SpecError, SpecProblem, ToolExecutionError
from steward.gate.stages.scan import DEFAULT_SCANNERS, injection_detector, scan_result
from steward.mcp.definitions import poisoning
from steward.security.scanners import FindingAction, TextSource
from steward.spec.models import A2AAgentRef, LoadedSpec
from steward.store.database import Database
from steward.store.mcp_pins import observe_pin, pin_database, pin_hold
from steward.tools.base import Effect, Tool, compile_validator

CARD_CHANGED = "a2a.card_changed"
BAD_SIGNATURE = "a2a.bad_signature"
POISONED = "a2a.card_poisoning"  # the card's text holds instructions for the model
NOT_PINNED = "a2a.not_pinned"
INPUT_REQUIRED = "a2a.input_required"
UNREACHABLE = "a2a.unreachable"
POLL_SECONDS = 0.2
ENDED = {
    TaskState.TASK_STATE_COMPLETED: "completed",
    TaskState.TASK_STATE_REJECTED: "rejected",
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_CANCELED: "canceled",
}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 20000,
                    "description": "what to ask the remote agent"},
        "context_id": {"type": "string", "maxLength": 200,
                       "description": "an earlier answer's context_id, to continue it"},
    },
    "required": ["message"],
    "additionalProperties": False,
}  # fmt: skip


def _untrusted(text: str) -> str:
    """Remote text as a tool result is shown: injection quarantined, PII masked (the
    execute stage scans results, not errors)."""
    return str(scan_result(text, DEFAULT_SCANNERS, allow_pii=False, max_records=1).value)


def _text(task: Task) -> str:
    parts = [p.text for p in task.status.message.parts if p.text]
    if not parts:
        parts = [p.text for a in task.artifacts for p in a.parts if p.text]
    return "\n".join(parts)


def _hold(db: Database, agent: str, name: str) -> Callable[[], tuple[str, str] | None]:
    def hold() -> tuple[str, str] | None:
        return pin_hold(db, agent, name, shown="agent card", not_pinned=NOT_PINNED)

    return hold


class _Remote:
    """One remote agent of one steward agent: fetches and pins its card, sends messages."""

    def __init__(self, db: Database, agent: str, name: str, config: A2AAgentRef,
                 deadline: float, scan: bool) -> None:  # fmt: skip
        self.db, self.agent, self.name, self.config = db, agent, f"a2a.{name}", config
        self.deadline = deadline
        self.scan = scan
        token = os.environ.get(config.token_env, "") if config.token_env else ""
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _http(self, timeout: float, *, token: bool = False) -> httpx.AsyncClient:
        """A client; with `token`, it carries the Bearer token (only to the JSON-RPC
        endpoint of the approved card: fetching cards and keys needs none)."""
        limits = httpx.Timeout(timeout, connect=self.config.connect_timeout_seconds)
        return httpx.AsyncClient(headers=self.headers if token else {}, timeout=limits)

    async def observe(self, http: httpx.AsyncClient) -> SeenCard:
        """Fetch the card and pin what it shows; raise when it may not be used now."""
        seen = await fetch_card(http, self.config)
        finding, reason = seen.finding, BAD_SIGNATURE
        if not finding and self.scan:
            reason = POISONED
            text = {
                "description": seen.card.description,
                "inputSchema": [[s.name, s.description] for s in seen.card.skills],
            }
            finding = poisoning(text, injection_detector(DEFAULT_SCANNERS))  # fmt: skip
        pin = await asyncio.to_thread(
            observe_pin, self.db, self.agent, self.name, seen.sha256, seen.definition,
            finding=finding, changed=CARD_CHANGED, poisoned=reason,
        )  # fmt: skip
        if pin.quarantined or pin.approved_sha256 != seen.sha256:
            why = pin.detail or "its agent card changed since it was pinned"
            raise ToolExecutionError(
                f"{self.name} is quarantined ({why}); an admin approves it with "
                f"`steward mcp pins approve {self.agent} {self.name}`",
                code=pin.reason or CARD_CHANGED, retryable=False,
            )  # fmt: skip
        return seen

    async def call(self, message: str, context_id: str | None = None) -> Any:
        started = time.monotonic()
        async with self._http(self.deadline) as public:
            try:
                seen = await self.observe(public)
            except (httpx.HTTPError, ValueError) as exc:
                raise ToolExecutionError(f"cannot fetch the agent card of {self.name}: {exc}",
                                         code=UNREACHABLE, retryable=False) from None  # fmt: skip
        async with self._http(self.deadline, token=True) as http:
            client = await create_client(
                seen.card, ClientConfig(streaming=False, httpx_client=http)
            )
            request = SendMessageRequest(message=new_text_message(
                message, role=Role.ROLE_USER, context_id=context_id or None))  # fmt: skip
            try:
                task = await self._send(client, request)
                return await self._follow(client, task, started)
            except ToolExecutionError:
                raise
            except Exception as exc:  # the message may have been taken: never retried
                raise ToolExecutionError(
                    f"{self.name}: {type(exc).__name__}: {_untrusted(str(exc))}",
                    code=UNREACHABLE,
                    retryable=False,
                    outcome_unknown=True,
                ) from None

    @staticmethod
    async def _send(client: Client, request: SendMessageRequest) -> Task:
        async for response in client.send_message(request):
            if response.HasField("task"):
                return response.task
            if response.HasField("message"):  # a direct reply, no task
                task = Task()
                task.status.state = TaskState.TASK_STATE_COMPLETED
                task.status.message.CopyFrom(response.message)
                return task
        raise ToolExecutionError("the remote agent answered nothing", code=UNREACHABLE,
                                 retryable=False, outcome_unknown=True)  # fmt: skip

    async def _follow(self, client: Client, task: Task, started: float) -> dict[str, Any]:
        while task.status.state not in ENDED:
            if time.monotonic() - started > self.deadline:
                return await self._give_up(client, task)
            await asyncio.sleep(POLL_SECONDS)
            task = await client.get_task(GetTaskRequest(id=task.id))
        state = ENDED[task.status.state]
        if state != "completed":
            raise ToolExecutionError(f"{self.name} {state} the task: {_untrusted(_text(task))}",
                                     code=f"a2a.task_{state}", retryable=False)  # fmt: skip
        return {"agent": self.name, "task_id": task.id, "context_id": task.context_id,
                "state": state, "answer": _text(task)}  # fmt: skip

    async def _give_up(self, client: Client, task: Task) -> dict[str, Any]:
        waiting = task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        if task.id:
            # best effort: the remote may have ended it meanwhile
            with contextlib.suppress(Exception):
                await client.cancel_task(CancelTaskRequest(id=task.id))
        if waiting:
            raise ToolExecutionError(
                f"{self.name} was still awaiting approval at the remote agent after "
                f"{self.deadline:.0f}s (task {task.id}, now cancelled): {_untrusted(_text(task))}",
                code=INPUT_REQUIRED, retryable=False,
            )  # fmt: skip
        raise ToolExecutionError(f"{self.name} did not finish within {self.deadline:.0f}s "
                                 f"(task {task.id}, now cancelled)", code="a2a.timeout",
                                 retryable=False, outcome_unknown=True)  # fmt: skip


def _describe(card: AgentCard | None, name: str) -> str:
    if card is None:
        return f"Ask the remote A2A agent {name}."
    skills = ", ".join(s.name for s in card.skills)
    about = f"Ask the remote A2A agent {card.name}: {card.description}"
    return f"{about} (skills: {skills})" if skills else about


def _build_card(remote: _Remote) -> SeenCard:
    async def first() -> SeenCard:
        async with remote._http(remote.config.connect_timeout_seconds + 5.0) as http:
            return await remote.observe(http)

    with ThreadPoolExecutor(1) as pool:  # the builder may be inside a running event loop
        return pool.submit(asyncio.run, first()).result()


def a2a_tools(loaded: LoadedSpec, db: object | None) -> list[Tool]:
    """The tools `a2a.<name>` of the spec's `a2a_agents` that its `tools` list names, their
    cards pinned in `db` (a steward Database; None: the deployment's). A card that cannot
    be fetched refuses to load, with the line of its entry; a quarantined one loads (the
    tool is held until an admin approves the card)."""
    pins = pin_database(db)
    spec = loaded.spec
    listed = set(spec.tools) | set(spec.decision_authority.forbidden)
    action = spec.injection.action_for(TextSource.MCP_TOOL_DESCRIPTIONS)
    scan = action is not None and action is not FindingAction.RECORD
    tools: list[Tool] = []
    for name, config in spec.a2a_agents.items():
        if f"a2a.{name}" not in listed:
            continue
        wait = config.call_timeout_seconds or spec.limits.tool_timeout_seconds
        remote = _Remote(pins, spec.name, name, config, wait, scan)
        card: AgentCard | None = None
        try:
            card = _build_card(remote).card
        except ToolExecutionError:
            pass  # quarantined: pinned, held; the description stays generic
        except Exception as exc:
            line = next((i for i, text in enumerate(loaded.text.splitlines(), 1)
                         if text.strip().startswith(f"{name}:")), 1)  # fmt: skip
            message = f"cannot fetch the agent card of '{name}': {exc}"
            problem = SpecProblem(loaded.path, line, 1, f"a2a_agents.{name}.card_url", message)
            raise SpecError([problem]) from None
        tools.append(Tool(
            name=remote.name, description=_describe(card, name), parameters=PARAMETERS,
            function=remote.call, effect=Effect(config.effect),
            validator=compile_validator(PARAMETERS), idempotent=config.idempotent,
            timeout=wait + config.connect_timeout_seconds * 2 + 5.0, is_async=True,
            hold=_hold(pins, spec.name, remote.name),
        ))  # fmt: skip
    return tools
