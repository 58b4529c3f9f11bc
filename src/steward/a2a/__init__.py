"""Serve steward agents over the A2A protocol (v1.0, the `a2a-sdk` package): a signed
agent card per agent listing the skills its policy allows, and a JSON-RPC endpoint where
a task is a governed run (see `executor`). Needs the `a2a` extra."""

from __future__ import annotations

from steward.a2a.config import A2AConfig

__all__ = ["A2AConfig"]
