"""One gate state per database and process: the kill-switch cache, the limit store and
the circuit breakers every gate over that database uses, whichever agent object or
version (a resumed run's rebuilt agent included) it serves."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from steward.gate.pipeline import GateConfig
from steward.gate.stages.agent_state import AgentStateCache
from steward.store.agents import agent_state
from steward.store.database import Database
from steward.store.limits import limit_store


@dataclass(frozen=True, slots=True)
class SharedGateState:
    states: AgentStateCache  # the runtime forgets an agent's entry when its switch flips
    config: GateConfig


_shared: dict[str, SharedGateState] = {}
_lock = threading.Lock()


def shared_gate_state(db: Database) -> SharedGateState:
    """The process-wide gate state of `db`'s deployment (keyed by its URL)."""
    with _lock:
        found = _shared.get(db.url)
        if found is None:
            states = AgentStateCache(lambda name: agent_state(db, name))
            found = _shared[db.url] = SharedGateState(
                states, GateConfig(states=states, limits=limit_store(db))
            )
        return found
