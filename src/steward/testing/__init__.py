"""Test helpers shipped for users: a scripted model, and fakes."""

from steward.testing.scripted import ScriptedModel, final, calls

__all__ = ["ScriptedModel", "calls", "final"]
