"""Tools: the `@tool` decorator, tool metadata, and the registry specs resolve names against."""

from steward.tools.base import DataClass, Effect, Tool, ToolContext, compile_validator, tool
from steward.tools.registry import ToolRegistry

__all__ = [
    "DataClass",
    "Effect",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "compile_validator",
    "tool",
]
