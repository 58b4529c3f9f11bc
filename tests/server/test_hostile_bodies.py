"""Hostile request bodies: nesting past the depth bound is 422 naming the field, and the
deepest accepted value reads back through every route; a chunked body over the cap is 413."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from steward.core.errors import StewardError
from steward.core.values import MAX_JSON_DEPTH
from steward.store.approvals import decide_approval, get_approval

from .served import Served
from .test_stream import _events


def nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` containers deep, counting itself: {"n": {"n": ... {"n": 1}}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"n": value}
    result: dict[str, Any] = value
    return result


def depth_of(value: Any) -> int:
    """Containers on the deepest path (iterative: the values here nest 900 deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            deepest = max(deepest, depth)
        else:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _pending(served: Served, run_id: str) -> dict[str, Any]:
    served.wait_for(run_id, "waiting")
    approvals = served.as_("reviewer", "GET", "/v1/approvals").json()
    [mine] = [a for a in approvals if a["run_id"] == run_id]
    return dict(mine)


def test_edited_arguments_nested_too_deep_are_422_and_reads_keep_working(served: Served) -> None:
    run = served.start()
    approval = _pending(served, run["id"])
    url = f"/v1/approvals/{approval['id']}/decision"
    for depth in (MAX_JSON_DEPTH + 1, 900):
        arguments = {**approval["arguments"], "note": nested(depth - 1)}
        assert depth_of(arguments) == depth
        response = served.as_(
            "reviewer", "POST", url, json={"decision": "approve", "arguments": arguments}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "request.invalid"
        assert "body.arguments" in [f["field"] for f in error["fields"]], error
        assert f"deeper than {MAX_JSON_DEPTH}" in error["message"]
    # nothing was decided, and every read still answers
    assert served.as_("reviewer", "GET", f"/v1/approvals/{approval['id']}").json()["status"] == (
        "pending"
    )
    assert served.as_("admin", "GET", f"/v1/runs/{run['id']}/events").status_code == 200
    assert served.as_("admin", "GET", "/v1/audit/events").status_code == 200


def test_any_body_nested_too_deep_is_422_naming_its_field(served: Served) -> None:
    body = {"agent": "support-desk", "input": "hi", "tags": nested(MAX_JSON_DEPTH + 5)}
    response = served.as_("admin", "POST", "/v1/runs", json=body)
    assert response.status_code == 422, response.text
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert fields and all(f.startswith("body.tags") for f in fields), fields


def _contains(haystack: Any, needle: Any) -> bool:
    if haystack == needle:
        return True
    if isinstance(haystack, dict):
        return any(_contains(v, needle) for v in haystack.values())
    if isinstance(haystack, list):
        return any(_contains(v, needle) for v in haystack)
    return False


def test_the_deepest_accepted_edit_reads_back_through_every_route(served: Served) -> None:
    run = served.start()
    approval = _pending(served, run["id"])
    deepest = nested(MAX_JSON_DEPTH - 1)
    arguments = {**approval["arguments"], "note": deepest}
    assert depth_of(arguments) == MAX_JSON_DEPTH
    decided = served.as_(
        "reviewer",
        "POST",
        f"/v1/approvals/{approval['id']}/decision",
        json={"decision": "approve", "arguments": arguments},
    )
    assert decided.status_code == 200, decided.text
    # the tool's schema has no `note`: the edit is denied, but it is on record everywhere
    done = served.wait_for(run["id"], "succeeded", "escalated", "failed")

    got = served.as_("admin", "GET", f"/v1/runs/{run['id']}")
    assert got.status_code == 200 and got.json()["status"] == done["status"]
    one = served.as_("admin", "GET", f"/v1/approvals/{approval['id']}")
    assert one.status_code == 200, one.text
    events = served.as_("admin", "GET", f"/v1/runs/{run['id']}/events")
    assert events.status_code == 200, events.text
    assert _contains(events.json(), deepest)
    audit = served.as_("admin", "GET", "/v1/audit/events", params={"run_id": run["id"]})
    assert audit.status_code == 200, audit.text
    assert _contains(audit.json()["items"], deepest)
    url = f"/v1/runs/{run['id']}/stream"
    with served.client.stream("GET", url, headers=served.headers("viewer")) as response:
        assert response.status_code == 200
        records = list(_events(response.iter_lines()))
    assert records[-1]["event"] == "run.finished"
    assert _contains([r["data"] for r in records], deepest)
    denied = [e for e in events.json() if e["type"] == "gate.decided"]
    assert any("args.invalid" in json.dumps(e["data"]) for e in denied)


def test_a_chunked_body_over_the_cap_is_413_with_the_error_json(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"agent": "support-desk", "input": "'
        for _ in range(40):
            yield b"x" * 32768  # 1.25 MiB in all, with no Content-Length
        yield b'"}'

    response = served.client.post(
        "/v1/runs",
        content=chunks(),
        headers={**served.headers("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request.too_large"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_console_refuses_deep_edits_with_a_message(served: Served) -> None:
    from .test_console import post, sign_in, waiting_run

    _, approval_id = waiting_run(served)
    sign_in(served, "reviewer")
    url = f"/console/approvals/{approval_id}/decide"
    for text in (json.dumps(nested(MAX_JSON_DEPTH + 1)), "[" * 5000 + "]" * 5000):
        response = post(served, url, {"decision": "edit", "arguments": text})
        assert response.status_code == 422, response.text[:300]
        assert f"deeper than {MAX_JSON_DEPTH}" in response.text
        assert "Nothing was decided" in response.text
    assert get_approval(served.db, approval_id).status == "pending"


def test_the_store_refuses_to_record_an_unreadable_edit(served: Served) -> None:
    """Every face decides through the store: it is the last line, whatever the face."""
    run = served.start()
    approval = _pending(served, run["id"])
    for bad in (nested(MAX_JSON_DEPTH + 1), {"amount_usd": math.nan}):
        with pytest.raises(StewardError, match="edited arguments"):
            decide_approval(served.db, approval["id"], approve=True, by="x", arguments=bad)
    assert get_approval(served.db, approval["id"]).status == "pending"


def test_non_finite_numbers_in_edits_are_422(served: Served) -> None:
    run = served.start()
    approval = _pending(served, run["id"])
    body = '{"decision": "approve", "arguments": {"order_id": "10114", "amount_usd": -Infinity, "reason": "r"}}'
    response = served.client.post(
        f"/v1/approvals/{approval['id']}/decision",
        content=body.encode(),
        headers={**served.headers("reviewer"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "body.arguments" in [f["field"] for f in response.json()["error"]["fields"]]
    assert "amount_usd" in response.json()["error"]["message"]
