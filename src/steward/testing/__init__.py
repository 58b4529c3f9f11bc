"""Test helpers shipped for users: a scripted model and an in-memory run scope."""

from steward.testing.gate import memory_gate_config
from steward.testing.scope import MemoryScope
from steward.testing.scripted import ScriptedModel, calls, final

__all__ = ["MemoryScope", "ScriptedModel", "calls", "final", "memory_gate_config"]
