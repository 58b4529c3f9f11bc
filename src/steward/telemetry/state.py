"""The /metrics families that are state, not a stream: what is in flight, read from the
store at every scrape, and the build.

The event-folded metrics (telemetry/metrics.py) count what one process saw since it
started. How many approvals are pending or runs are waiting is a fact of the store: a
gauge kept by folding events would start at 0 after a restart (it read 1 with 23
approvals pending) and would drift with several servers over one database, since each
sees only its own commits. `StoreGauges` asks the store instead, with two grouped counts
per scrape (store/inflight.py), so every server reports the same, true numbers: aggregate
them across instances with max(), not sum().
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

import steward
from steward.core.events import RunStatus
from steward.store.database import Database
from steward.store.inflight import in_flight
from steward.store.token_relay import TokenRelay

__all__ = ["RelayCounts", "StoreGauges", "register_build_info", "register_state"]

# name, help, run status (None: approvals pending)
_GAUGES: tuple[tuple[str, str, RunStatus | None], ...] = (
    ("agent_active_runs", "Runs executing now (status running in the store).", RunStatus.RUNNING),
    ("agent_waiting_runs", "Runs waiting for an approval (status waiting).", RunStatus.WAITING),
    (
        "agent_queued_runs",
        "Runs accepted and waiting for a slot (status queued).",
        RunStatus.QUEUED,
    ),
    ("agent_approvals_pending", "Approval requests waiting for a person.", None),
)
_UP = "steward_store_up"
_UP_HELP = "1 when the store answered this scrape's state queries, else 0."


class StoreGauges:
    """A Prometheus collector: the in-flight gauges, counted in the store when scraped.
    `agents` always get a series (0 when idle), so a dashboard shows 0, not a gap. When
    the store cannot answer, the gauges are left out and `steward_store_up` is 0: a
    scrape never fails and never reports a stale number as current."""

    def __init__(self, db: Database, agents: Iterable[str] = ()) -> None:
        self.db = db
        self.agents = sorted(set(agents))

    def describe(self) -> Iterator[Metric]:
        for name, help_text, _ in _GAUGES:
            yield GaugeMetricFamily(name, help_text, labels=["agent_name"])
        yield GaugeMetricFamily(_UP, _UP_HELP)

    def collect(self) -> Iterator[Metric]:
        try:
            now = in_flight(self.db)
        except Exception:  # an outage must not turn /metrics into a 500
            yield GaugeMetricFamily(_UP, _UP_HELP, value=0)
            return
        # every gauge names the same agents: the served ones and any with work in flight
        agents = sorted({*self.agents, *now.approvals_pending, *(a for a, _ in now.runs)})
        for name, help_text, status in _GAUGES:
            counts = now.approvals_pending if status is None else now.runs_in(status)
            family = GaugeMetricFamily(name, help_text, labels=["agent_name"])
            for agent in agents:
                family.add_metric([agent], counts.get(agent, 0))
            yield family
        yield GaugeMetricFamily(_UP, _UP_HELP, value=1)


def register_build_info(registry: CollectorRegistry) -> None:
    """`steward_build_info{version, python} 1`: join it to any series to see what runs."""
    build = Info("steward_build", "The steward release and Python serving.", registry=registry)
    build.info({"version": steward.__version__, "python": platform.python_version()})


def register_state(
    registry: CollectorRegistry, db: Database, agents: Iterable[str] = ()
) -> StoreGauges:
    """Register the store's in-flight gauges and the build info on `registry`."""
    gauges = StoreGauges(db, agents)
    registry.register(gauges)
    register_build_info(registry)
    return gauges


class RelayCounts:
    """`steward_token_relay_chunks_total{outcome}`: text chunks this process's token
    relay (store/token_relay.py) sent to other processes' followers, dropped (a fault:
    tokens are best effort, the run goes on) and heard for its own followers."""

    NAME = "steward_token_relay_chunks"

    def __init__(self, relay: TokenRelay) -> None:
        self.relay = relay

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.NAME, "Token relay chunks.", labels=["outcome"])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.NAME, "Token relay chunks.", labels=["outcome"])
        for outcome in ("sent", "dropped", "heard"):
            family.add_metric([outcome], self.relay.counts[outcome])
        yield family
