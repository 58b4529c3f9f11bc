"""The fleet view through a TestClient (no browser): the overview pages on both stores,
their 422s naming the field, runs search, the audit range, actor and export."""

from __future__ import annotations

import csv
import io
import json
import time

from .served import Served
from .test_console import QUICK, get, sign_in


def test_overview_pages_show_the_fleet_and_one_agent(served_any: Served) -> None:
    served = served_any
    run = served.start(QUICK)
    served.wait_for(run["id"], "succeeded")
    sign_in(served, "viewer")
    fleet = get(served, "/console/overview")
    assert "Fleet overview" in fleet and '<svg class="chart"' in fleet
    assert 'class="bar s-succeeded"' in fleet  # today's bar
    assert "Approvals pending" in fleet and "Time to decision" in fleet
    one = get(served, "/console/overview/support-desk")
    assert "<h1>support-desk</h1>" in one and "search_kb" in one  # the tool's latency
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert f"{today} to {today}" in get(served, f"/console/overview?since={today}&until={today}")
    assert "query.since" in get(served, "/console/overview?since=soon", 422)
    assert "query.until" in get(served, f"/console/overview?since={today}&until=2000-01-01", 422)
    get(served, "/console/overview/nobody", 404)


def test_runs_search_from_the_console(served: Served) -> None:
    found = served.start(QUICK)
    other = served.start("What are your opening hours?")
    for run in (found, other):
        served.wait_for(run["id"], "succeeded", "escalated", "waiting")
    sign_in(served, "viewer")
    page = get(served, "/console/runs?q=free+shipping")
    assert found["id"] in page and other["id"] not in page
    assert "No runs match these filters" in get(served, "/console/runs?q=free&tag=tenant%3Dnone")
    assert "tag: &#39;tenant&#39;: expected key=value" in get(served, "/console/runs?tag=tenant")


def test_audit_range_actor_and_export(served: Served) -> None:
    run = served.start(QUICK)
    served.wait_for(run["id"], "succeeded")
    sign_in(served, "viewer")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page = get(served, f"/console/audit?type=run.started&since={today}")
    assert '<td class="actor">admin:admin-1</td>' in page  # who started the run
    assert '<details class="event-details">' in page and "&#34;input&#34;" in page
    assert "No events match" in get(served, "/console/audit?since=2000-01-01&until=2000-01-02")
    assert "query.since" in get(served, "/console/audit?since=whenever", 422)
    exported = served.client.get(f"/console/audit/export.csv?type=run.&since={today}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {r["type"].split(".")[0] for r in rows} == {"run"}
    assert rows[0]["actor"] == "admin:admin-1" and rows[0]["ts"].startswith(today)
    lines = served.client.get(f"/console/audit/export.jsonl?type=run.&since={today}").text
    assert [json.loads(line)["id"] for line in lines.splitlines()] == [int(r["id"]) for r in rows]
    assert served.client.get("/console/audit/export.xml").status_code == 404
