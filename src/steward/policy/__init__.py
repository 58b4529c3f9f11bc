"""Policy: compile a spec into a pure decision function. No I/O; counters arrive in the context."""

from steward.policy.compiler import Policy, PolicyContext, compile_policy

__all__ = ["Policy", "PolicyContext", "compile_policy"]
