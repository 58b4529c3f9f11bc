"""The values that cross Temporal: a workflow's input, an activation's outcome, the
requests of its signals. Plain dataclasses, so workflow code (sandboxed, replayed)
imports nothing else of steward's."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunStart:
    """What a worker needs to start the run: the agent version is on record (its spec
    text, content-addressed) and rebuilt on whichever worker drives the run. `text` is
    the user's words masked as the journal holds them: card numbers never reach
    Temporal's history."""

    run_id: str
    agent: str
    agent_version: str
    text: str
    tags: dict[str, str] = field(default_factory=dict)
    max_run_seconds: float = 600.0
    label: str = ""  # the label (and canary arm) that chose this version, for the record
    arm: str = ""


@dataclass(frozen=True)
class Drive:
    """One activation: the first (`reason` empty) starts the run, later ones resume it."""

    start: RunStart
    reason: str = ""


@dataclass(frozen=True)
class Activation:
    """How an activation ended: the runner's RunResult, and the earliest expiry of the
    approvals a waiting run holds (the workflow's durable timer)."""

    run_id: str
    status: str
    output: str = ""
    confidence: float | None = None
    reason_code: str = ""
    reason: str = ""
    steps: int = 0
    waiting_on: list[str] = field(default_factory=list)
    denials: list[str] = field(default_factory=list)
    seconds: float = 0.0
    expires_at: float | None = None


@dataclass(frozen=True)
class CancelRequest:
    run_id: str
    by: str
    reason: str
