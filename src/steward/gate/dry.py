"""Decide a call without running it: the gate's own deciding stages (pipeline.
deciding_stages: kill switch, validate, egress, policy, autonomy) over a scope that keeps
the events in memory. Nothing is counted, asked or executed. `steward explain` and
`steward policy test` decide through here, so they report what the gate would decide."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from steward.core.agent_state import AgentState, Autonomy
from steward.core.approval import ApprovalView
from steward.core.decision import Decision
from steward.core.events import Event, GateDecided
from steward.core.messages import Source, ToolCall
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.pipeline import Gate, GateConfig, deciding_stages
from steward.gate.scope import CallRecord, RunFindings
from steward.policy import Policy
from steward.store.limits import MemoryLimits
from steward.tools.base import Tool


@dataclass(frozen=True, slots=True)
class DryDecision:
    """The decision the gate would reach before counters and people, and which stage
    reached it last (`policy`, `autonomy`, `validate`, ...)."""

    decision: Decision
    stage: str


@dataclass(slots=True)
class _MemoryScope:
    run_id: str = "dry-run"
    agent: str = ""
    agent_version: str = ""
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def durable(self) -> None:
        return None

    @property
    def tags(self) -> dict[str, str]:
        return {}

    def recorded_call(self, key: str) -> CallRecord | None:
        return None

    def recorded_findings(self) -> RunFindings:
        return RunFindings()  # a dry decision has no run before it

    async def approval(self, approval_id: str) -> ApprovalView | None:
        return None

    async def expire_approval(self, approval_id: str) -> None:
        return None


class _Decided:
    """The end of a dry chain: the call is decided; nothing after the deciding stages runs."""

    name = "decided"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        assert cx.decision is not None  # the policy stage always decides
        return CallOutcome(cx.call, cx.key, CallStatus.WAITING, cx.decision)


async def decide_dry(
    policy: Policy,
    tools: Mapping[str, Tool],
    call: ToolCall,
    *,
    sources: Mapping[str, Source] | None = None,
    mode: Autonomy = Autonomy.SUPERVISED,
    enabled: bool = True,
) -> DryDecision:
    """What the gate decides for `call` by agent `policy.agent` in autonomy `mode`."""
    state = AgentState(enabled=enabled, mode=mode)
    config = GateConfig(states=lambda _agent: state, limits=MemoryLimits())
    gate = Gate(policy, tools, config, stages=[*deciding_stages(config.states), _Decided()])
    scope = _MemoryScope(agent=policy.agent)
    outcome = await gate.process(scope, call, 0, sources)
    stages = [e.stage for e in scope.events if isinstance(e, GateDecided)]
    return DryDecision(outcome.decision, stages[-1] if stages else "gate")
