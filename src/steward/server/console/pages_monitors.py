"""An agent's drift page: each monitored metric's control chart (inline SVG) across the
agent's versions, the alarms, and the command that rolls the label back to the version
that ran before the change."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from steward.monitor.view import agent_monitors, rollback_command
from steward.server.api.agents import agent_overview
from steward.server.console.drift_chart import chart_svg
from steward.server.console.render import PREFIX, page
from steward.server.console.session import Reader
from steward.server.service import RunService

router = APIRouter(prefix=PREFIX, include_in_schema=False)

LABELS = {
    "accuracy": "Accuracy (feedback)",
    "confidence": "Confidence",
    "escalation_rate": "Escalation rate",
    "denial_rate": "Denial rate (runs with a denied call)",
    "latency": "Run latency (log scale)",
    "cost": "Cost per run (log scale)",
}


@router.get("/agents/{name}/drift")
def drift_page(name: str, request: Request, who: Reader) -> Response:
    service: RunService = request.app.state.service
    agent = agent_overview(service, name)  # 404 for an unknown agent
    view = agent_monitors(service.db, name)
    charts = [(m, LABELS.get(m.metric, m.metric), chart_svg(m)) for m in view.metrics]
    loaded = service.agents.get(name)
    declared = loaded.loaded.spec.monitors if loaded is not None else None
    seen = {m.metric for m in view.metrics}
    unobserved = [
        LABELS.get(metric, metric)
        for metric in (declared.metrics if declared is not None else {})
        if metric not in seen
    ]
    return page(
        request, "drift.html", who, section="agents", agent=agent, view=view, charts=charts,
        rollback=rollback_command(name), unobserved=unobserved,
    )  # fmt: skip
