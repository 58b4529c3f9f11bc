"""The runtime: the agent loop, written against an executor seam, and its embedded engine."""

from steward.runtime.agent import AgentRuntime, build_agent
from steward.runtime.runner import Runner, RunResult

__all__ = ["AgentRuntime", "RunResult", "Runner", "build_agent"]
