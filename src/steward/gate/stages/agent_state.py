"""The kill switch (first stage: a disabled agent's calls are all denied, pending ones
included) and the autonomy mode (right after policy: advisory sends every write to a
person; autonomous lets what the spec sends to review through; forbidden stays forbidden)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from steward.core.agent_state import AgentState, Autonomy
from steward.core.decision import Reason, Verdict, deny, review
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome
from steward.tools.base import Effect

StateOf = Callable[[str], AgentState]


class AgentStateCache:
    """States read through `load`, kept for `ttl` seconds: the gate asks on every call,
    the store is asked at most once a second per agent (so a kill switch bites within it)."""

    def __init__(self, load: StateOf, ttl: float = 1.0) -> None:
        self._load = load
        self._ttl = ttl
        self._known: dict[str, tuple[float, AgentState]] = {}
        self._lock = threading.Lock()

    def __call__(self, agent: str) -> AgentState:
        now = time.monotonic()
        found = self._known.get(agent)
        if found is not None and found[0] > now:
            return found[1]
        try:
            state = self._load(agent)
        except Exception:  # a connection the store dropped is replaced: ask once more
            try:
                state = self._load(agent)
            except Exception as exc:  # cannot tell whether the agent is enabled: fail closed
                state = AgentState(enabled=False, unknown=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._known[agent] = (now + self._ttl, state)
        return state

    def forget(self, agent: str) -> None:
        with self._lock:
            self._known.pop(agent, None)


@dataclass(slots=True)
class KillSwitchStage:
    states: StateOf
    name: str = "kill_switch"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        state = self.states(cx.policy.agent)
        if not state.enabled:
            why = f"its state cannot be read ({state.unknown})" if state.unknown else "kill switch"
            return cx.stop(
                self.name, deny("agent.disabled", f"agent {cx.policy.agent} is disabled ({why})")
            )
        cx.notes["autonomy"] = state.mode
        return await proceed(cx)


class AutonomyStage:
    name = "autonomy"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        mode = cx.notes.get("autonomy", Autonomy.SUPERVISED)
        decision = cx.decision
        if decision is None or mode is Autonomy.SUPERVISED:
            return await proceed(cx)
        write = cx.tool is not None and cx.tool.effect is Effect.WRITE
        if mode is Autonomy.ADVISORY and write and decision.verdict is Verdict.ALLOW:
            cx.decided(
                self.name,
                review("autonomy.advisory", "the agent is advisory: every write needs a person"),
            )
        elif mode is Autonomy.AUTONOMOUS and decision.verdict is Verdict.REVIEW:
            reasons = (
                Reason(
                    "autonomy.autonomous", "the agent is autonomous: review tiers run unattended"
                ),
            )
            cx.decided(
                self.name,
                decision.__class__(Verdict.ALLOW, reasons, decision.rule_ids, decision.risk),
            )
        return await proceed(cx)
