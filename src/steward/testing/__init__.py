"""Test helpers shipped for users: a scripted model, and fakes."""

from steward.testing.scripted import ScriptedModel, calls, final

__all__ = ["ScriptedModel", "calls", "final"]
