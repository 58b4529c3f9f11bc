"""The gate's stages, outermost first. Each has one job; the pipeline is a list of them."""

from steward.gate.stages.approval import ApprovalStage
from steward.gate.stages.checks import (
    BudgetStage,
    EgressStage,
    PolicyStage,
    RateLimitStage,
    ValidateStage,
)
from steward.gate.stages.execute import BreakerStage, ExecuteStage

__all__ = [
    "ApprovalStage",
    "BreakerStage",
    "BudgetStage",
    "EgressStage",
    "ExecuteStage",
    "PolicyStage",
    "RateLimitStage",
    "ValidateStage",
]
