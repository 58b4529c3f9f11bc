"""What is in flight right now, counted in SQL: runs queued, running and waiting, and
approvals pending, per agent. The state gauges of /metrics read these at every scrape
(telemetry/state.py), so they are right after a restart and with several servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from steward.core.events import RunStatus
from steward.store.database import Database
from steward.store.schema import approvals, runs

IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)


@dataclass(frozen=True, slots=True)
class InFlight:
    runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (agent, status) -> n
    approvals_pending: dict[str, int] = field(default_factory=dict)  # agent -> n

    @property
    def runs_in_flight(self) -> int:
        return sum(self.runs.values())

    def runs_in(self, status: RunStatus) -> dict[str, int]:
        """Agent -> runs in `status`."""
        return {agent: n for (agent, s), n in self.runs.items() if s == status.value}


def in_flight(db: Database) -> InFlight:
    """Two grouped counts, each a search of a status index (ix_runs_status*, ix_approvals_status):
    the rows read are the ones in flight, however many runs the store holds."""
    by_status = (
        select(runs.c.agent, runs.c.status, func.count())
        .where(runs.c.status.in_([s.value for s in IN_FLIGHT]))
        .group_by(runs.c.agent, runs.c.status)
    )
    pending = (
        select(approvals.c.agent, func.count())
        .where(approvals.c.status == "pending")
        .group_by(approvals.c.agent)
    )
    with db.reader.connect() as connection:
        counted = {(a, s): int(n) for a, s, n in connection.execute(by_status)}
        pending_by_agent = {a: int(n) for a, n in connection.execute(pending)}
    return InFlight(counted, pending_by_agent)
