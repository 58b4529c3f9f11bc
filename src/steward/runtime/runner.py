"""The agent loop. The model proposes, the gate disposes.

Each step: ask the model (or replay its recorded answer), send every proposed call
through the gate concurrently, feed the outcomes back, until a final answer. Hard
bounds: max_steps and max_run_seconds. A final confidence below the spec's threshold
ends the run `escalated`. A call waiting for a person ends this activation `waiting`;
`resume()` picks the run up from its journal, replaying what was recorded. A run that
finds every slot of its agent taken (limits.max_concurrent_runs) is recorded `queued`
before it waits for one; `resume()` starts a queued run left by a stopped process.

Cancelling the task that drives a run finishes it `cancelled` (reason code
`run.cancelled`), durably, before the cancellation propagates; a run cancelled from
outside (engines/cancel.py) while it still executes stops at its next step.

A run whose agent's kill switch is turned off while it runs stops before its next model
turn, and does not act on a turn answered after the switch flipped: it ends `escalated`
(reason code `agent.disabled`): the work was stopped unfinished, so a person must look
at it (`cancelled` would say someone gave it up). A delegated run so stopped is its
parent's answer like any other ending; the parent goes on (its own switch is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from steward.core.errors import ModelError, StewardError, StoreError
from steward.core.events import (
    RunFinished,
    RunQueued,
    RunResumed,
    RunStarted,
    RunStatus,
    RunWaiting,
)
from steward.core.lifecycle import is_shutdown
from steward.core.messages import Message
from steward.gate.budget import TREE_CAP
from steward.gate.outcome import CallOutcome, CallStatus
from steward.models.external import EXTERNAL_CODE, is_external
from steward.models.pricing import PriceTable, load_prices
from steward.models.protocol import ModelRequest
from steward.models.retry import deadline
from steward.runtime.agent import AgentRuntime
from steward.runtime.delegation import (
    ACTIVATION,
    Activation,
    Delegated,
    DelegationService,
    root_tree,
)
from steward.runtime.engine import Engine, RunView
from steward.runtime.executor import Executor
from steward.runtime.model_calls import ModelCaller, TextSink
from steward.runtime.runs import (
    AgentDisabled,
    VersionMemory,
    check_enabled,
    final_answer,
    mask_input,
    switched_off,
)
from steward.runtime.spend import BudgetExhausted
from steward.runtime.truncation import on_cut_off
from steward.security.provenance import said_words, trace_sources
from steward.tools.base import Effect

log = logging.getLogger("steward.runner")

__all__ = ["AgentDisabled", "RunResult", "Runner", "new_run_id"]


CANCELLED = "run.cancelled"
DRIVEN_BY_ROOT = "delegation.driven_by_root"
RESUMED_ELSEWHERE = "run.resumed_elsewhere"


class _SwitchedOff(Exception):
    """The agent's kill switch was turned off while the run was active."""


class _CancelledElsewhere(Exception):
    """The run was finished `cancelled` from outside while this activation ran."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    status: RunStatus
    output: str = ""
    confidence: float | None = None
    reason_code: str = ""
    reason: str = ""
    steps: int = 0
    waiting_on: tuple[str, ...] = ()
    denials: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(slots=True)
class _Progress:
    steps: int = 0
    denials: list[str] = field(default_factory=list)
    side_effect: bool = False  # a write ran in this run: the response cache is off from here
    on_text: TextSink | None = None


class Runner:
    def __init__(
        self,
        engine: Engine,
        prices: PriceTable | None = None,
        *,
        delegation: DelegationService | None = None,
    ) -> None:
        """`delegation`: runs the specialists of `delegate.*`/`handoff.*` calls
        (steward.orchestration.Delegator); without it those calls fail closed with
        `delegation.unavailable`."""
        self.engine = engine
        self.delegation = delegation
        self.store = engine.store
        # kill switch, limits and breakers: one state per deployment, shared by every
        # runner, agent object and agent version of it (the engine provides it)
        shared = engine.gate_state
        self.states = shared.states
        self.gates = shared.config
        self.models = ModelCaller(prices or load_prices(), shared.config.ledger)
        self.spend = self.models.spend
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._versions = VersionMemory(engine.store)

    def _slot(self, agent: AgentRuntime) -> asyncio.Semaphore:
        slot = self._slots.get(agent.name)
        if slot is None:
            slot = self._slots[agent.name] = asyncio.Semaphore(
                agent.loaded.spec.limits.max_concurrent_runs
            )
        return slot

    def remember_version(self, agent: AgentRuntime) -> None:
        """Record the agent's version (spec and prompt file) once."""
        self._versions.remember(agent)

    async def run(
        self,
        agent: AgentRuntime,
        text: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        on_text: TextSink | None = None,
        label: str = "",
        arm: str = "",
        delegated: Delegated | None = None,
    ) -> RunResult:
        """Start a run and drive it until it finishes or waits for a person. `on_text`
        receives the model's text as it streams (whole, for models that don't stream).
        `label` and `arm`: the label (and canary arm) that chose this agent version, put
        on the run's record. `delegated`: a specialist's run started by a delegation
        (steward/orchestration/), with its place in the run tree. Raises AgentDisabled
        when the agent's kill switch is off."""
        _refuse_external(agent)
        check_enabled(self.states, agent.name)
        self.remember_version(agent)
        executor = self.engine.executor(run_id or new_run_id(), agent.name, agent.version)
        masked, kinds = mask_input(text)
        link = _link(delegated)
        if self._slot(agent).locked():  # every slot is taken: on record, queued, first
            executor.emit(RunQueued(agent.name, agent.version, masked, dict(tags or {}), kinds,
                                    label, arm, *link))  # fmt: skip
        async with self._holding_slot(agent, executor):
            executor.emit(RunStarted(agent.name, agent.version, masked, dict(tags or {}), kinds,
                                     label, arm, *link))  # fmt: skip
            # The unmasked text stays in memory, for provenance only (security/provenance.py);
            # a specialist's "user" is the root's user, never the message it was sent.
            typed = delegated.typed if delegated is not None else (text,)
            return await self._drive(agent, executor, masked, on_text, typed, delegated)

    async def resume(
        self,
        agent: AgentRuntime,
        run_id: str,
        reason: str = "resumed",
        *,
        on_text: TextSink | None = None,
        delegated: Delegated | None = None,
    ) -> RunResult:
        """Continue a run from its journal: recorded steps replay, nothing runs twice. A
        queued run starts. Of several processes resuming the same run, one drives it;
        the others get its current state with reason code `run.resumed_elsewhere`. A
        delegated run is driven by its parent (`delegated` given, steward/orchestration/):
        resumed alone it is only reported, with reason code `delegation.driven_by_root`."""
        row = self.store.get_run(run_id)
        if is_external(agent.model):  # its own program drives it (steward.Run.attach)
            return RunResult(
                run_id,
                RunStatus(row.status),
                reason_code=EXTERNAL_CODE,
                reason=f"run {run_id} of external agent {agent.name} is driven by its program",
            )
        if row.agent_version != agent.version:
            raise StoreError(
                f"run {run_id} was started by {row.agent}@{row.agent_version}, not {agent.version}"
            )
        executor = self.engine.executor(run_id, agent.name, agent.version)
        executor.load()
        if executor.history.finished is not None:
            done = executor.history.finished
            return RunResult(
                run_id,
                done.status,
                done.output,
                done.confidence,
                done.reason_code,
                done.reason,
                done.steps,
            )
        first = executor.history.started or executor.history.queued
        if first is not None and first.parent_run_id and delegated is None:
            return RunResult(
                run_id,
                RunStatus(row.status),
                reason_code=DRIVEN_BY_ROOT,
                reason=f"run {run_id} is part of the run tree of {first.root_run_id}: "
                "resume that root, which drives it",
            )
        async with self._holding_slot(agent, executor):
            if not await self._claim(agent, executor, row, reason):
                now = self.store.get_run(run_id)
                return RunResult(
                    run_id,
                    RunStatus(now.status),
                    reason_code=RESUMED_ELSEWHERE,
                    reason=f"run {run_id} was {now.status} before this resume could claim it",
                )
            typed = delegated.typed if delegated is not None else ()  # the root's, if in memory
            return await self._drive(agent, executor, row.input, on_text, typed, delegated)

    async def _claim(
        self, agent: AgentRuntime, executor: Executor, seen: RunView, reason: str
    ) -> bool:
        """Record the run's start (a queued run) or resumption, if nobody else did since
        `seen` was read (the engine's store decides, atomically)."""
        queued = executor.history.queued
        event: RunStarted | RunResumed = (
            queued.started()
            if executor.history.started is None and queued is not None
            else RunResumed(reason, agent.name)
        )
        if not await self.store.claim(seen, event):
            return False
        executor.history.apply(event)
        return True

    @contextlib.asynccontextmanager
    async def _holding_slot(self, agent: AgentRuntime, executor: Executor) -> AsyncIterator[None]:
        """Hold one of the agent's slots (limits.max_concurrent_runs). A queued run whose
        task is cancelled while it waits (not a shutdown) finishes `cancelled` on record:
        nothing may start it later."""
        slot = self._slot(agent)
        try:
            await slot.acquire()
        except asyncio.CancelledError as exc:
            if executor.history.started is None and not is_shutdown(exc):
                executor.emit(
                    RunFinished(RunStatus.CANCELLED, reason_code=CANCELLED, reason=_said(exc))
                )
                await asyncio.shield(executor.durable())
            raise
        try:
            yield
        finally:
            slot.release()

    async def _drive(
        self,
        agent: AgentRuntime,
        executor: Executor,
        text: str,
        on_text: TextSink | None = None,
        typed: tuple[str, ...] = (),
        delegated: Delegated | None = None,
    ) -> RunResult:
        started = time.perf_counter()
        progress = _Progress(on_text=on_text)
        limits = agent.loaded.spec.limits
        tree = delegated.tree if delegated is not None else root_tree(agent, executor.run_id, text)
        # what a delegation tool of this activation reaches, and the root's budget that
        # every reservation of a delegated run is held on too (gate/budget.py)
        entered = ACTIVATION.set(Activation(self, agent, executor, tree, typed))
        capped = TREE_CAP.set(tree.cap if tree.hop > 0 else None)
        try:
            async with asyncio.timeout(limits.max_run_seconds) as bound:
                with deadline(bound.when()):  # model retries never wait past it
                    result = await self._loop(
                        agent, executor, text, progress, typed, delegated=tree.hop > 0
                    )
        except TimeoutError:
            result = self._finish(
                executor,
                progress,
                RunStatus.ESCALATED,
                reason_code="limits.max_run_seconds",
                reason=f"the run exceeded max_run_seconds={limits.max_run_seconds:g}",
            )
        except _SwitchedOff as exc:
            result = self._finish(
                executor,
                progress,
                RunStatus.ESCALATED,
                reason_code=AgentDisabled.code,
                reason=str(exc),
            )
        except BudgetExhausted as exc:
            result = self._finish(
                executor, progress, RunStatus.ESCALATED, reason_code=exc.code, reason=str(exc)
            )
        except ModelError as exc:
            result = self._finish(
                executor, progress, RunStatus.ESCALATED, reason_code=exc.code, reason=str(exc)
            )
        except asyncio.CancelledError as exc:
            # The task driving the run was cancelled: the run ends here, on record, and
            # the cancellation goes on. `task.cancel(msg)` gives the reason.
            if is_shutdown(exc):  # stopping the process is not ending the run
                await asyncio.shield(executor.durable())
                raise
            self._finish(
                executor, progress, RunStatus.CANCELLED, reason_code=CANCELLED, reason=_said(exc)
            )
            await asyncio.shield(executor.durable())
            raise
        except _CancelledElsewhere as exc:  # its finish is on record already
            result = RunResult(
                executor.run_id,
                RunStatus.CANCELLED,
                reason_code=CANCELLED,
                reason=exc.reason,
                steps=progress.steps,
                denials=tuple(progress.denials),
            )
        except StoreError:
            raise  # the journal is down: nothing can be recorded, so nothing more may happen
        except Exception as exc:
            log.exception("run %s failed", executor.run_id)
            result = self._finish(
                executor,
                progress,
                RunStatus.FAILED,
                reason_code="internal.error",
                reason=f"{type(exc).__name__}: {exc}",
            )
        finally:
            TREE_CAP.reset(capped)
            ACTIVATION.reset(entered)
        await executor.durable()
        return _with_time(result, time.perf_counter() - started)

    async def _loop(
        self,
        agent: AgentRuntime,
        executor: Executor,
        text: str,
        progress: _Progress,
        typed: tuple[str, ...] = (),
        *,
        delegated: bool = False,
    ) -> RunResult:
        spec = agent.loaded.spec
        messages: list[Message] = []
        if spec.prompt:
            messages.append(Message("system", spec.prompt))
        asked = Message("user", text)
        messages.append(asked)
        tool_specs = tuple(
            agent.tools[name].spec()
            for name in spec.tools
            if name in agent.tools and agent.tools[name].held() is None  # held: hidden
        )
        said = ""  # the text of cut-off answers the model was asked to continue
        gate = agent.gate(self.gates)
        user_words = said_words(typed)  # read once per activation, kept in memory only
        gate.scan_input(executor, text)
        for step in range(spec.limits.max_steps):
            progress.steps = step + 1
            response = executor.recorded_model(step)
            if response is None:  # a new model turn: only while the kill switch is on
                self._still_enabled(agent)
                request = ModelRequest(
                    tuple(messages),
                    tool_specs,
                    role="route" if step == 0 else "reason",
                    max_output_tokens=spec.limits.max_output_tokens,
                    temperature=spec.temperature,
                )
                response = await self.models.call(
                    agent, executor, step, request,
                    after_side_effect=progress.side_effect, on_text=progress.on_text,
                )  # fmt: skip
                self._still_enabled(agent)  # an answer given after the switch flipped
            messages.append(Message("assistant", response.text, response.tool_calls))
            cancelled = executor.cancelled()  # before anything this turn may do or finish
            if cancelled is not None:
                raise _CancelledElsewhere(cancelled)
            if response.cut_off:  # never an answer; its tool calls never reach the gate
                cut, said = on_cut_off(response, spec.limits.on_truncation), said + response.text
                if cut.go_on is None:
                    return self._finish(executor, progress, RunStatus.ESCALATED, output=said,
                                        reason_code=cut.reason_code, reason=cut.reason)  # fmt: skip
                messages[-1:] = cut.go_on
                continue
            if response.is_final:
                text = said + response.text  # with what came before a cut-off, if any
                return self._final(agent, executor, progress, text, response.confidence)
            seen = messages[:-1]
            if delegated:  # the message it was sent is the parent's data, never the user's
                seen = [_as_data(m) if m is asked else m for m in seen]
            pending = [
                gate.process(
                    executor, call, step, trace_sources(call.arguments, seen, said=user_words)
                )
                for call in response.tool_calls
            ]
            # One call needs no task of its own; several run concurrently.
            outcomes = [await pending[0]] if len(pending) == 1 else await asyncio.gather(*pending)
            waiting = tuple(
                waited for o in outcomes if o.status is CallStatus.WAITING for waited in o.awaited
            )
            progress.denials.extend(o.error_code for o in outcomes if o.status is CallStatus.DENIED)
            if waiting:
                executor.emit(
                    RunWaiting(f"waiting for {len(waiting)} approval(s)", waiting, progress.steps)
                )
                return RunResult(
                    executor.run_id,
                    RunStatus.WAITING,
                    reason_code="approval.pending",
                    reason=f"waiting for approval {', '.join(waiting)}",
                    steps=progress.steps,
                    waiting_on=waiting,
                    denials=tuple(progress.denials),
                )
            unknown = [o for o in outcomes if o.status is CallStatus.UNKNOWN]
            if unknown:
                return self._finish(
                    executor,
                    progress,
                    RunStatus.ESCALATED,
                    reason_code="tool.outcome_unknown",
                    reason=_describe_unknown(unknown),
                )
            ending = next((o.ending for o in outcomes if o.ending is not None), None)
            if ending is not None:  # a handoff, or a tree too deep or looping
                return self._finish(executor, progress, ending.status, output=ending.output,
                                    reason_code=ending.reason_code, reason=ending.reason)  # fmt: skip
            progress.side_effect = progress.side_effect or any(
                o.status is CallStatus.EXECUTED and agent.tools[o.call.name].effect is Effect.WRITE
                for o in outcomes
            )
            messages.extend(o.to_message() for o in outcomes)
        return self._finish(
            executor,
            progress,
            RunStatus.ESCALATED,
            reason_code="limits.max_steps",
            reason=f"no final answer within max_steps={spec.limits.max_steps}",
        )

    def _still_enabled(self, agent: AgentRuntime) -> None:
        stopped = switched_off(self.states, agent.name, unread_stops=False)
        if stopped is not None:
            raise _SwitchedOff(stopped)

    def _final(
        self,
        agent: AgentRuntime,
        executor: Executor,
        progress: _Progress,
        text: str,
        confidence: float | None,
    ) -> RunResult:
        ending = final_answer(agent, confidence)
        return self._finish(
            executor, progress, ending.status, output=text, confidence=confidence,
            reason_code=ending.reason_code, reason=ending.reason,
        )  # fmt: skip

    def _finish(
        self,
        executor: Executor,
        progress: _Progress,
        status: RunStatus,
        *,
        output: str = "",
        confidence: float | None = None,
        reason_code: str = "",
        reason: str = "",
    ) -> RunResult:
        executor.emit(RunFinished(status, output, confidence, reason_code, reason, progress.steps))
        return RunResult(
            executor.run_id,
            status,
            output,
            confidence,
            reason_code,
            reason,
            progress.steps,
            denials=tuple(progress.denials),
        )


def _refuse_external(agent: AgentRuntime) -> None:
    if is_external(agent.model):
        raise StewardError(
            f"agent {agent.name} has `model: external`: its own program drives its runs "
            "through the steward facade (steward.open(...).start_run(...))",
            code=EXTERNAL_CODE,
        )


def _said(exc: asyncio.CancelledError) -> str:
    """Why the task was cancelled: `task.cancel(msg)` gives the reason."""
    said = str(exc.args[0]) if exc.args and exc.args[0] else ""
    return said or "the task running the run was cancelled"


def _as_data(message: Message) -> Message:
    """A delegated run's first message, traced as data (a tool's), not the user's words."""
    return Message("tool", message.content, name="delegation")


def _link(delegated: Delegated | None) -> tuple[str, str, int, str]:
    """A run start's tree fields: (parent_run_id, root_run_id, hop, parent_key)."""
    if delegated is None:
        return "", "", 0, ""
    tree = delegated.tree
    return delegated.parent_run_id, tree.root_run_id, tree.hop, delegated.parent_key


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:20]


def _describe_unknown(outcomes: list[CallOutcome]) -> str:
    """What happened to each call whose outcome is unknown (a crash, a timeout)."""
    said = "; ".join(f"{o.call.name}: {o.error}" for o in outcomes)
    return f"the outcome of a write is unknown ({said}); a person must reconcile it"


def _with_time(result: RunResult, seconds: float) -> RunResult:
    return RunResult(
        result.run_id,
        result.status,
        result.output,
        result.confidence,
        result.reason_code,
        result.reason,
        result.steps,
        result.waiting_on,
        result.denials,
        seconds,
    )
