"""Every route, every identity: who may call what. Anonymous callers get 401; a role
without the permission, or an agent key outside its own agent, gets 403 with a reason;
everyone else gets past authorisation (whatever the route then answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steward.cli.serve import DEMO_SPEC
from steward.server import create_app, load_agents
from steward.store import Database

from .served import Served, issue_keys

PEOPLE = ("admin", "reviewer", "viewer")
EVERYONE = (*PEOPLE, "agent", "other-agent")
READERS = (*PEOPLE, "agent")  # the demo agent's own key reads its own runs

# (method, path template, body, identities allowed)
ROUTES: list[tuple[str, str, dict[str, object] | None, tuple[str, ...]]] = [
    ("GET", "/v1/runs", None, EVERYONE),  # an agent key lists only its own agent's runs
    ("POST", "/v1/runs", {"agent": "support-desk", "input": "Where is order #10014?"},
     ("admin", "agent")),
    ("GET", "/v1/runs/{run}", None, READERS),
    ("GET", "/v1/runs/{run}/tree", None, READERS),
    ("GET", "/v1/runs/{run}/events", None, READERS),
    ("GET", "/v1/runs/{run}/stream", None, READERS),
    ("POST", "/v1/runs/{run}/feedback", {"verdict": "correct"}, ("admin", "reviewer")),
    ("POST", "/v1/runs/{run}/cancel", {"reason": "matrix"}, ("admin", "reviewer")),
    ("GET", "/v1/approvals", None, EVERYONE),  # likewise filtered
    ("GET", "/v1/approvals/{approval}", None, READERS),
    ("POST", "/v1/approvals/{approval}/decision", {"decision": "approve"}, ("admin", "reviewer")),
    ("GET", "/v1/agents", None, PEOPLE),
    ("GET", "/v1/agents/support-desk", None, READERS),
    ("GET", "/v1/agents/support-desk/versions", None, READERS),
    ("POST", "/v1/agents/support-desk/enable", {"comment": "matrix"}, ("admin",)),
    ("POST", "/v1/agents/support-desk/disable", {"comment": "matrix"}, ("admin",)),
    ("PUT", "/v1/agents/support-desk/mode", {"mode": "supervised"}, ("admin",)),
    ("GET", "/v1/audit/events", None, PEOPLE),
    ("POST", "/v1/audit/verify", None, PEOPLE),
    ("GET", "/metrics", None, PEOPLE),
    ("GET", "/v1/mcp/pins", None, PEOPLE),
    ("POST", "/v1/mcp/pins/support-desk/crm.lookup/approve", {}, ("admin",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    base: Path = tmp_path_factory.mktemp("matrix")
    patch = pytest.MonkeyPatch()
    patch.setenv("STEWARD_DEMO_SYSTEMS", str(base / "systems.db"))
    patch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{base / 'steward.db'}"
    db = Database.open(url)
    with TestClient(create_app(url, load_agents([DEMO_SPEC])), raise_server_exceptions=False) as c:
        served = Served(c, db, issue_keys(db))
        from .served import LARGE_REFUND

        run = served.start(LARGE_REFUND, who="agent")  # so that no person is its starter
        served.wait_for(run["id"], "waiting")
        approval = served.as_("admin", "GET", "/v1/approvals").json()[0]
        yield served, {"run": run["id"], "approval": approval["id"]}
    patch.undo()
    db.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_route_authorisation(
    world: tuple[Served, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, object] | None,
    allowed: tuple[str, ...],
) -> None:
    served, ids = world
    url = path.format(**ids)
    kwargs = {"json": body} if body is not None else {}
    anonymous = served.client.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "auth.unauthenticated"
    forged = served.client.request(
        method, url, headers={"Authorization": "Bearer stw_000000000000_" + "x" * 43}, **kwargs
    )  # type: ignore[arg-type]
    assert forged.status_code == 401
    for who in EVERYONE:
        if path.endswith("/stream") and who in allowed:
            continue  # an allowed stream stays open; test_stream covers it
        response = served.as_(who, method, url, **kwargs)
        if who in allowed:
            assert response.status_code not in {401, 403}, (who, response.text)
        else:
            assert response.status_code == 403, (who, response.status_code, response.text)
            assert response.json()["error"]["code"] in {"auth.forbidden", "auth.agent_scope"}


def test_an_agent_key_can_never_approve_even_its_own_calls(
    world: tuple[Served, dict[str, str]],
) -> None:
    served, ids = world
    response = served.as_(
        "agent", "POST", f"/v1/approvals/{ids['approval']}/decision", json={"decision": "approve"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "role agent may not approvals.decide"


def test_an_agent_key_sees_only_its_own_runs(world: tuple[Served, dict[str, str]]) -> None:
    served, _ = world
    own = served.as_("agent", "GET", "/v1/runs").json()["items"]
    assert own and {r["agent"] for r in own} == {"support-desk"}
    other = served.as_("other-agent", "GET", "/v1/runs")
    assert other.status_code == 200 and other.json()["items"] == []
    asked = served.as_("other-agent", "GET", "/v1/runs", params={"agent": "support-desk"})
    assert asked.status_code == 403


def test_a_revoked_key_is_refused_at_once(world: tuple[Served, dict[str, str]]) -> None:
    from steward.security.keys import Role
    from steward.store.keys import create_key, revoke_key

    served, _ = world
    row, token = create_key(served.db, name="temp", role=Role.VIEWER, by="test")
    headers = {"Authorization": f"Bearer {token}"}
    assert served.client.get("/v1/runs", headers=headers).status_code == 200
    revoke_key(served.db, row.id, by="test")
    refused = served.client.get("/v1/runs", headers=headers)
    assert refused.status_code == 401


def test_whoever_started_a_run_may_not_decide_its_requests(
    world: tuple[Served, dict[str, str]],
) -> None:
    from .served import LARGE_REFUND

    served, _ = world
    served.as_(
        "admin", "POST", "/v1/agents/support-desk/enable", json={}
    )  # the matrix turned it off
    run = served.start(LARGE_REFUND, who="admin")
    served.wait_for(run["id"], "waiting")
    mine = [
        a for a in served.as_("admin", "GET", "/v1/approvals").json() if a["run_id"] == run["id"]
    ]
    url = f"/v1/approvals/{mine[0]['id']}/decision"
    own = served.as_("admin", "POST", url, json={"decision": "approve"})
    assert own.status_code == 403
    assert own.json()["error"] == {
        "code": "auth.separation_of_duties",
        "message": f"admin-1 started run {run['id']}; another person must decide its requests",
    }
    assert served.as_("reviewer", "POST", url, json={"decision": "approve"}).status_code == 200


def test_a_key_whose_stored_role_is_unknown_is_refused(
    world: tuple[Served, dict[str, str]],
) -> None:
    from sqlalchemy import update

    from steward.security.keys import Role
    from steward.store.keys import create_key
    from steward.store.schema import api_keys

    served, _ = world
    row, token = create_key(served.db, name="edited", role=Role.VIEWER, by="test")
    with served.db.writer.begin() as connection:
        connection.execute(update(api_keys).where(api_keys.c.id == row.id).values(role="root"))
    refused = served.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
