"""Overview pages: the fleet (all agents) and one agent over a date range: runs by
outcome per day, latency percentiles, cost per day and per transaction, automation and
escalation rates, denials by rule, approvals pending and time to decision. The figures
are store/stats.py's (the queries behind `steward stats`); the charts inline SVG."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from steward.core.times import parse_moment
from steward.security.keys import Permission
from steward.server.api.agents import agent_overview, agents_overview
from steward.server.auth import check
from steward.server.console import charts
from steward.server.console.render import PREFIX, duration, page, usd
from steward.server.console.session import Reader
from steward.server.errors import ApiError
from steward.server.service import RunService
from steward.store.stats import DAY, Overview, Scope, overview

router = APIRouter(prefix=PREFIX, include_in_schema=False)
DEFAULT_DAYS = 14
MAX_DAYS = 366
# stacking order, bottom up; each status is a CSS class s-STATUS
OUTCOMES = ["succeeded", "escalated", "rejected", "failed", "expired", "cancelled", "waiting",
            "running", "queued"]  # fmt: skip


def _day(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")


def _range(since: str, until: str, now: float) -> tuple[float, float, str, str]:
    """The range's bounds from the form (dates, RFC 3339 or spans); 422 naming the field."""
    bounds: dict[str, float] = {}
    for name, given, fallback in (("since", since, f"{DEFAULT_DAYS - 1}d"), ("until", until, "")):
        try:
            if given.strip() or fallback:
                bounds[name] = parse_moment(given.strip() or fallback, now=now, end=name == "until")
        except ValueError as error:
            raise ApiError(422, "request.invalid", f"query.{name}: {error}") from None
    start = float(int(bounds["since"] // DAY) * DAY)  # whole UTC days
    end = bounds.get("until", (int(now // DAY) + 1) * DAY)
    if end <= start:
        raise ApiError(422, "request.invalid", "query.until: must be after since")
    if (end - start) / DAY > MAX_DAYS:
        raise ApiError(422, "request.invalid", f"query.since: at most {MAX_DAYS} days")
    return start, end, _day(int(start // DAY)), _day(int((end - 1) // DAY))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _charts(figures: Overview) -> dict[str, object]:
    labels = [_day(d)[5:] for d in figures.days]  # MM-DD
    present = [s for s in OUTCOMES if any(figures.outcomes.get(d, {}).get(s) for d in figures.days)]
    series = {s: [figures.outcomes.get(d, {}).get(s, 0) for d in figures.days] for s in present}
    costs = [figures.cost_by_day.get(d, 0.0) for d in figures.days]
    tools = sorted(figures.tool_latency.items())
    return {
        "outcomes": charts.stacked_bars("Runs by outcome per day", labels, series),
        "outcome_names": present,
        "costs": charts.bars("Cost per day (USD)", labels, costs,
                             lambda v: f"${v:,.2f}" if v >= 1 or v == 0 else f"${v:.4f}"),
        "denials": charts.hbars("Denials by rule", list(figures.denials.items()),
                                lambda v: f"{v:,.0f}"),
        "tools": charts.hbars("Tool latency p95 (ms)",
                              [(t, v.p95 or 0.0) for t, v in tools], lambda v: f"{v:,.0f} ms"),
    }  # fmt: skip


def _render(request: Request, who: Reader, agent: str | None, since: str, until: str) -> Response:
    service: RunService = request.app.state.service
    now = time.time()
    start, end, first, last = _range(since, until, now)
    figures = overview(service.db, Scope(start, end, agent), now=now)
    run = figures.run_latency
    cards = [
        ("Runs", f"{sum(figures.statuses.values()):,}", f"{figures.transactions:,} finished or waiting"),
        ("Automation rate", _pct(figures.automation_rate), "succeeded without a person"),
        ("Escalation rate", _pct(figures.escalation_rate), "handed to a person"),
        ("Latency p50", duration(None if run.p50 is None else run.p50 / 1000), "start to finish"),
        ("Latency p95", duration(None if run.p95 is None else run.p95 / 1000), f"of {run.n:,} runs"),
        ("Cost", usd(figures.cost_total), f"{len(figures.days)} day(s)"),
        ("Cost per transaction", usd(figures.cost_per_transaction), f"{figures.finished:,} finished runs"),
        ("Approvals pending", f"{figures.pending:,}", "now"),
        ("Time to decision p50", duration(figures.decision_seconds.p50),
         f"p95 {duration(figures.decision_seconds.p95)} · {figures.decision_seconds.n:,} decided"),
    ]  # fmt: skip
    return page(
        request, "overview.html", who, section="overview", agent=agent, figures=figures,
        cards=cards, since=first, until=last, agents=[a.name for a in agents_overview(service)],
        charts=_charts(figures),
    )  # fmt: skip


@router.get("/overview")
def fleet_page(request: Request, who: Reader, since: str = "", until: str = "") -> Response:
    return _render(request, who, None, since, until)


@router.get("/overview/{agent}")
def agent_page(
    agent: str, request: Request, who: Reader, since: str = "", until: str = ""
) -> Response:
    check(who, Permission.READ, agent)
    agent_overview(request.app.state.service, agent)  # 404 for an unknown agent
    return _render(request, who, agent, since, until)
