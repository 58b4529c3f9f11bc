"""What the runner receives: an engine, which makes one executor per run and answers
the few questions the runner asks of stored runs. The runner never imports a store;
an engine binds these protocols to one (steward/engines/)."""

from __future__ import annotations

from typing import Protocol

from steward.core.events import RunResumed, RunStarted
from steward.gate.shared import SharedGateState
from steward.runtime.executor import Executor


class RunView(Protocol):
    """A stored run as the runner reads it."""

    @property
    def id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def agent_version(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def input(self) -> str: ...


class RunStore(Protocol):
    """The runner's reads and its one conditional write (the claim)."""

    def get_run(self, run_id: str) -> RunView:
        """Raises NotFoundError for an unknown run."""
        ...

    async def claim(self, seen: RunView, event: RunStarted | RunResumed) -> bool:
        """Record `event` if the run is still as `seen`; False when another process
        claimed it first."""
        ...

    def save_agent_version(
        self, agent: str, version: str, text: str, prompt: tuple[str, str] | None = None
    ) -> None: ...


class Engine(Protocol):
    """One per deployment and process: its executors, its run store, and the gate state
    (kill switch, limits, breakers) every process of the deployment shares."""

    @property
    def store(self) -> RunStore: ...

    @property
    def gate_state(self) -> SharedGateState: ...

    def executor(self, run_id: str, agent: str, agent_version: str) -> Executor: ...
