"""The gate: the one code path from a proposed tool call to its side effect."""

from steward.core.approval import ApprovalView
from steward.gate.outcome import CallOutcome, CallStatus
from steward.gate.pipeline import Gate, GateConfig
from steward.gate.scope import RunScope

__all__ = ["ApprovalView", "CallOutcome", "CallStatus", "Gate", "GateConfig", "RunScope"]
