"""A gate configuration for tests that drive a gate alone: every agent enabled in its
default mode, rate windows and budgets counted in memory (never shared)."""

from __future__ import annotations

from steward.core.agent_state import DEFAULT_STATE, AgentState
from steward.gate.pipeline import GateConfig
from steward.store.limits import MemoryLimits


def memory_gate_config() -> GateConfig:
    def default_state(_agent: str) -> AgentState:
        return DEFAULT_STATE

    return GateConfig(states=default_state, limits=MemoryLimits())
