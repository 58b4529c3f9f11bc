"""The gate: kill switch → validate → egress → policy → autonomy mode → standing injection
findings → rate limit → budget → approval → circuit breaker → execute (with result scan),
each stage a small object, recording every outcome as an
event through the run's scope. Anything the gate cannot decide is denied (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from steward.core.breaker import CircuitBreakers
from steward.core.decision import deny
from steward.core.events import GateDecided, ToolCallProposed
from steward.core.messages import Source, ToolCall
from steward.gate.budget import BudgetLedger
from steward.gate.context import CallContext, Next, Stage
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.ratelimit import RateCounter
from steward.gate.scope import RunScope
from steward.gate.stages import (
    ApprovalStage,
    BreakerStage,
    BudgetStage,
    EgressStage,
    ExecuteStage,
    PolicyStage,
    RateLimitStage,
    ValidateStage,
)
from steward.gate.stages.agent_state import AutonomyStage, KillSwitchStage, StateOf
from steward.gate.stages.release import ReleaseStage
from steward.gate.stages.scan import DEFAULT_SCANNERS, FindingsStage, scan_text
from steward.gate.workers import ToolWorkers
from steward.policy import Policy
from steward.security.scanners import Scanner, TextSource
from steward.store.limits import LimitStore
from steward.tools.base import Tool


@dataclass(frozen=True, slots=True)
class GateConfig:
    """What every gate needs, given at construction: the kill switch and autonomy mode of
    each agent, and the limit store its rate windows and budgets are counted in. One per
    database and process (gate/shared.py), shared by every agent version."""

    states: StateOf
    limits: LimitStore
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    scanners: Sequence[Scanner] = DEFAULT_SCANNERS

    @property
    def counter(self) -> RateCounter:
        return RateCounter(self.limits)

    @property
    def ledger(self) -> BudgetLedger:
        return BudgetLedger(self.limits)


def deciding_stages(states: StateOf) -> list[Stage]:
    """The stages that decide a call from the call itself and the agent's state: kill
    switch, validate, egress, policy, autonomy. No counter, person or tool is involved, so
    `steward explain` and `steward policy test` run exactly these (gate/dry.py)."""
    return [KillSwitchStage(states), ValidateStage(), EgressStage(), PolicyStage(), AutonomyStage()]


def default_stages(config: GateConfig, workers: ToolWorkers | None = None) -> list[Stage]:
    """`workers`: the agent's pool for synchronous tools, kept across its runs (one is
    made at the first call otherwise)."""
    return [
        *deciding_stages(config.states),
        FindingsStage(),
        RateLimitStage(config.counter),
        BudgetStage(config.ledger),
        ApprovalStage(),
        BreakerStage(config.breakers),
        ExecuteStage(config.scanners, workers=workers),
    ]


def decide_only_stages(config: GateConfig) -> list[Stage]:
    """The default stages with the execute stage replaced by the release stage: for a
    caller that runs the tool itself (gate/stages/release.py)."""
    return [*default_stages(config)[:-1], ReleaseStage()]


def call_key(run_id: str, step: int, call_id: str) -> str:
    """The idempotency key of a call: run id + step + the model's call id."""
    return f"{run_id}:{step}:{call_id}"


class Gate:
    def __init__(
        self,
        policy: Policy,
        tools: Mapping[str, Tool],
        config: GateConfig,
        stages: Sequence[Stage] | None = None,
        *,
        workers: ToolWorkers | None = None,
    ) -> None:
        self.policy = policy
        self.tools = dict(tools)
        self.config = config
        self.stages = list(stages) if stages is not None else default_stages(config, workers)
        self._chain = self._build(self.stages)

    @staticmethod
    def _build(stages: Sequence[Stage]) -> Next:
        async def end(cx: CallContext) -> CallOutcome:  # pragma: no cover - execute never calls on
            return cx.stop("gate", deny("gate.no_executor", "the pipeline has no execute stage"))

        chain: Next = end
        for stage in reversed(stages):
            chain = partial(stage, proceed=chain)
        return chain

    def scan_input(self, scope: RunScope, text: str) -> None:
        """Scan the run's input for injection when the spec's `injection.user_input` says
        so (record, review or deny), once per run: a finding is a ResultScanned event, and
        a review or deny stands over every call of the run. Every way of running an agent
        calls this before the run's first step."""
        scan_text(
            scope,
            self.config.scanners,
            self.policy.spec.injection.action_for(TextSource.USER_INPUT),
            source=TextSource.USER_INPUT,
            key=f"{scope.run_id}:input",
            label="input",
            text=text,
        )

    async def process(
        self,
        scope: RunScope,
        call: ToolCall,
        step: int,
        sources: Mapping[str, Source] | None = None,
    ) -> CallOutcome:
        """Govern one proposed call. Replays the recorded outcome when there is one."""
        key = call_key(scope.run_id, step, call.id)
        record = scope.recorded_call(key)
        if record is not None and record.outcome is not None:
            return record.outcome
        if record is not None and record.sources is not None:
            # Resumed: the provenance traced when the call was proposed holds (it saw the
            # user's words before redaction; the journal keeps them masked).
            sources = record.sources
        source_map = {k: str(v) for k, v in (sources or {}).items()}
        if record is None or not record.proposed:
            scope.emit(ToolCallProposed(step, call, key, dict(sources or {})))
        cx = CallContext(scope, self.policy, call, key, step, self.tools.get(call.name), source_map)
        try:
            return await self._chain(cx)
        except Exception as exc:  # fail closed: an error in any stage is a deny
            decision = deny("gate.error", f"the gate could not decide: {type(exc).__name__}: {exc}")
            scope.emit(GateDecided(key, call.name, "gate", decision))
            return CallOutcome(
                call, key, CallStatus.DENIED, decision, error_code="gate.error", error=str(exc)
            )
