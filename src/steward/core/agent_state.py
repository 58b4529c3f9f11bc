"""An agent's operational state: the kill switch and the autonomy mode (seed 001's
progressive autonomy). advisory: every write needs a person; supervised: the spec's
tiers; autonomous: what the spec sends to review is allowed (forbidden stays forbidden)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Autonomy(StrEnum):
    ADVISORY = "advisory"
    SUPERVISED = "supervised"
    AUTONOMOUS = "autonomous"


@dataclass(frozen=True, slots=True)
class AgentState:
    enabled: bool = True
    mode: Autonomy = Autonomy.SUPERVISED
    version: int = 0  # how many changes the store has recorded
    unknown: str = ""  # why the store could not be read; the agent counts as disabled then


DEFAULT_STATE = AgentState()
