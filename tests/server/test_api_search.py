"""GET /v1/runs narrows by words in the input or answer, tags and a time range; a bad
filter is a 422 naming its field."""

from __future__ import annotations

from typing import Any

from .served import Served


def _start(served: Served, text: str, tenant: str) -> dict[str, Any]:
    response = served.as_("admin", "POST", "/v1/runs",
                          json={"agent": "support-desk", "input": text, "tags": {"tenant": tenant}})  # fmt: skip
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(served: Served, **params: Any) -> list[str]:
    response = served.as_("viewer", "GET", "/v1/runs", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


def test_runs_are_found_by_words_tags_and_time(served: Served) -> None:
    shipping = _start(served, "Is there a minimum spend for free shipping?", "acme")
    hours = _start(served, "What are your opening hours?", "globex")
    for run in (shipping, hours):
        served.wait_for(run["id"], "succeeded", "escalated", "waiting")
    assert _ids(served, search="shipping") == [shipping["id"]]
    assert _ids(served, search="minim spend") == [shipping["id"]]  # prefixes, every word
    assert _ids(served, tag="tenant=globex") == [hours["id"]]
    assert _ids(served, search="shipping", tag="tenant=globex") == []
    created = served.as_("viewer", "GET", f"/v1/runs/{hours['id']}").json()["created_at"]
    assert _ids(served, since=created) == [hours["id"]]
    assert shipping["id"] in _ids(served, until=created)


def test_a_bad_filter_names_its_field(served: Served) -> None:
    for params, field in (({"tag": "tenant"}, "query.tag"), ({"since": "yesterday"}, "since"),
                          ({"search": "x" * 201}, "query.search"),
                          ({"search": "a\x00b"}, "query.search"),
                          ({"since": "2025-12-03T00:00:00Z", "until": "2025-12-02T00:00:00Z"},
                           "query.until")):  # fmt: skip
        response = served.as_("viewer", "GET", "/v1/runs", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.text, response.text
