"""Drift monitors: control charts (CUSUM, EWMA) per agent, version and metric over the
journal's committed events, calibrated to a declared in-control average run length."""

from steward.monitor.charts import Cusum, Ewma
from steward.monitor.consumer import DriftMonitor
from steward.monitor.series import Series, SeriesConfig
from steward.monitor.view import AgentMonitors, agent_monitors

__all__ = [
    "AgentMonitors",
    "Cusum",
    "DriftMonitor",
    "Ewma",
    "Series",
    "SeriesConfig",
    "agent_monitors",
]
