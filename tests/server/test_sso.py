"""Single sign-on: people sign in to the console through an OpenID Connect provider that
runs on loopback (tests/server/oidc_provider.py). The whole flow goes through the steward
server (redirects followed by hand): PKCE, state and nonce, the ID token's signature,
issuer, audience and expiry; groups give roles; an unmapped person gets nothing; a person
signed in by SSO decides as themselves (four eyes included)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from steward.cli.serve import DEMO_SPEC
from steward.core.errors import InvalidInput
from steward.demo.tools import SYSTEMS_ENV
from steward.security.keys import Role
from steward.security.sso import SsoConfig, parse_roles, role_for
from steward.server import create_app, load_agents
from steward.store import Database
from steward.store.approvals import get_approval
from steward.store.keys import create_key

from .oidc_provider import CLIENT_ID, CLIENT_SECRET, KID, Provider, running_provider
from .served import LARGE_REFUND, Served, issue_keys
from .test_console import get, pending_id, post, waiting_run

ROLES = "steward-admins=admin,payments-ops=reviewer,auditors=viewer"
ROSA = {"sub": "u-rosa", "preferred_username": "rosa", "groups": ["staff", "payments-ops"]}
VIC = {"sub": "u-vic", "preferred_username": "vic", "groups": ["auditors"]}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_provider(provider: Provider) -> None:
    provider.person, provider.tamper = {}, {}
    provider.authorize_requests.clear()
    provider.token_requests.clear()


def config(provider: Provider, base: str = "http://testserver", **changes: Any) -> SsoConfig:
    values: dict[str, Any] = {
        "issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_url": f"{base}/console/sso/callback", "roles": parse_roles(ROLES),
        "session_secret": "test-session-secret", **changes,
    }  # fmt: skip
    return SsoConfig(**values)


def _serve(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sso: SsoConfig | None,
    base: str = "http://testserver",
) -> Iterator[Served]:  # fmt: skip
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    tokens = issue_keys(db)
    app = create_app(db.url, load_agents([DEMO_SPEC]), sso=sso)
    with TestClient(app, base_url=base, raise_server_exceptions=False) as client:
        yield Served(client, db, tokens)


@pytest.fixture
def sso(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> Iterator[Served]:
    yield from _serve(sqlite_db, tmp_path, monkeypatch, config(provider))


def sign_in(served: Served, provider: Provider, person: dict[str, Any],
            next_url: str = "/console/approvals") -> httpx.Response:  # fmt: skip
    """Start at steward, let the provider sign `person` in, come back: the callback's
    answer (the browser's redirects, followed by hand)."""
    provider.person = person
    start = served.client.get(f"/console/sso/start?next={next_url}", follow_redirects=False)
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith(f"{provider.issuer}/authorize?")
    at_idp = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    assert at_idp.status_code == 302, at_idp.text
    return served.client.get(at_idp.headers["location"], follow_redirects=False)


def get_flash(response: httpx.Response) -> str:
    """The flash message a redirect carries (base64 JSON in steward_flash)."""
    from steward.server.console.render import FLASH_COOKIE

    value = next(
        c.split(";")[0].split("=", 1)[1]
        for c in response.headers.get_list("set-cookie") if c.startswith(f"{FLASH_COOKIE}=")
    )  # fmt: skip
    return str(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode())


def session_cookie(response: httpx.Response) -> str | None:
    return next(
        (c for c in response.headers.get_list("set-cookie") if c.startswith("steward_session=")),
        None,
    )


def refused(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text
    assert session_cookie(response) is None
    for phrase in phrases:
        assert phrase in response.text, response.text


# -- the flow --------------------------------------------------------------------------


def test_a_reviewer_signs_in_with_pkce_state_and_nonce(sso: Served, provider: Provider) -> None:
    back = sign_in(sso, provider, ROSA)
    assert back.status_code == 303 and back.headers["location"] == "/console/approvals"
    cookie = session_cookie(back)
    assert cookie is not None
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie

    asked = provider.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert asked["state"] and asked["nonce"] and "openid" in asked["scope"].split()
    assert asked["redirect_uri"] == "http://testserver/console/sso/callback"
    sent = provider.token_requests[-1]
    assert sent["code_verifier"] and sent["grant_type"] == "authorization_code"

    page = get(sso, "/console/approvals")
    assert 'class="who" title="signed in by single sign-on">rosa</span>' in page
    assert '<span class="role role-reviewer">reviewer</span>' in page
    assert "Signed in as rosa (reviewer) by single sign-on." in page
    # the session cookie also works for the API's reads, as a key's session does
    assert sso.client.get("/v1/approvals").status_code == 200
    audit = sso.as_("admin", "GET", "/v1/audit/events?type=person.signed_in").json()["items"]
    assert [(e["data"]["name"], e["data"]["role"], e["data"]["linked"]) for e in audit] == [
        ("rosa", "reviewer", True)
    ]
    assert audit[0]["data"]["subject"] == "u-rosa" and audit[0]["data"]["issuer"] == provider.issuer


def test_a_reviewer_by_sso_approves_as_themselves(sso: Served, provider: Provider) -> None:
    run_id, approval_id = waiting_run(sso)
    sign_in(sso, provider, ROSA)
    done = post(sso, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert done.status_code == 303, done.text
    decided = get_approval(sso.db, approval_id)
    assert (decided.status, decided.decided_by) == ("approved", "reviewer:rosa")
    assert sso.wait_for(run_id, "succeeded")["output"].startswith("I've refunded $330")


def test_a_viewer_by_sso_cannot_approve(sso: Served, provider: Provider) -> None:
    _, approval_id = waiting_run(sso)
    assert sign_in(sso, provider, VIC).status_code == 303
    queue = get(sso, "/console/approvals")
    assert '<span class="role role-viewer">viewer</span>' in queue and ">Approve<" not in queue
    refused_ = post(sso, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert refused_.status_code == 403 and "may not approvals.decide" in refused_.text
    assert get_approval(sso.db, approval_id).status == "pending"


def test_the_strongest_mapped_group_wins(sso: Served, provider: Provider) -> None:
    both = {**VIC, "groups": ["auditors", "steward-admins"]}
    sign_in(sso, provider, both)
    assert '<span class="role role-admin">admin</span>' in get(sso, "/console/runs")


def test_an_unmapped_person_gets_no_access(sso: Served, provider: Provider) -> None:
    stranger = {"sub": "u-sam", "preferred_username": "sam", "groups": ["staff", "marketing"]}
    back = sign_in(sso, provider, stranger)
    refused(back, 403, "You signed in as sam, but none of your groups (staff, marketing) "
            "gives access to steward", "auditors, payments-ops, steward-admins")  # fmt: skip
    get(sso, "/console/runs", status=303)  # still signed out
    no_groups = {"sub": "u-tom", "preferred_username": "tom"}
    refused(sign_in(sso, provider, no_groups), 403, "none of your groups (none)")


def test_a_person_without_a_name_claim_is_refused(sso: Served, provider: Provider) -> None:
    refused(sign_in(sso, provider, {"sub": "u-x", "groups": ["auditors"]}), 403,
            "did not say who you are")  # fmt: skip


def test_sign_out_ends_the_sso_session(sso: Served, provider: Provider) -> None:
    sign_in(sso, provider, ROSA)
    session = sso.client.cookies["steward_session"]
    out = post(sso, "/console/sign-out", {})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    get(sso, "/console/runs", status=303)
    sso.client.cookies.set("steward_session", session)  # the old cookie is dead too
    get(sso, "/console/runs", status=303)


# -- who the person is: one principal, four eyes ----------------------------------------


def test_sso_and_a_key_of_one_name_are_one_person(sso: Served, provider: Provider) -> None:
    """rosa starts a run with her admin key; signed in by SSO she may not approve it."""
    _, token = create_key(sso.db, name="rosa", role=Role.ADMIN, by="test")
    started = sso.client.post("/v1/runs", json={"agent": "support-desk", "input": LARGE_REFUND},
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    run_id = started.json()["id"]
    sso.wait_for(run_id, "waiting")
    approval_id = pending_id(sso, run_id)
    sign_in(sso, provider, ROSA)
    own = post(sso, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert own.status_code == 303
    assert "rosa started run" in get(sso, "/console/approvals")
    assert "another person must decide" in get_flash(own)
    assert get_approval(sso.db, approval_id).status == "pending"


def test_the_subject_not_the_name_identifies_a_person(sso: Served, provider: Provider) -> None:
    sign_in(sso, provider, ROSA)
    impostor = {**ROSA, "sub": "u-someone-else"}  # same name, another IdP account
    refused(sign_in(sso, provider, impostor), 403, "You cannot sign in as rosa",
            "already the name of another person")  # fmt: skip
    renamed = {**ROSA, "preferred_username": "rosa.m"}  # same account, new name: still rosa
    assert sign_in(sso, provider, renamed).status_code == 303
    assert 'single sign-on">rosa</span>' in get(sso, "/console/runs")


def test_an_agent_name_cannot_sign_in(sso: Served, provider: Provider) -> None:
    bot = {"sub": "u-bot", "preferred_username": "bot", "groups": ["steward-admins"]}
    refused(sign_in(sso, provider, bot), 403, "already the name of an agent")


# -- what must fail closed ---------------------------------------------------------------

FOREIGN_KEY = RSAKey.generate_key(2048, parameters={"kid": KID})


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"aud": "another-client", "azp": CLIENT_ID}, "aud"),
        ({"aud": ["another-client", "a-third"], "azp": CLIENT_ID}, "aud"),
        ({"nonce": "not-the-one-we-sent"}, "nonce"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired"),
        ({"signing_key": FOREIGN_KEY}, "signature"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"discovery_issuer": "https://evil.example"}, "discovery document names issuer"),
    ],
    ids=[
        "wrong-audience",
        "wrong-audience-our-azp",
        "wrong-audiences",
        "wrong-nonce",
        "expired",
        "bad-signature",
        "wrong-issuer",
        "discovery-issuer-mismatch",
    ],
)
def test_a_bad_id_token_signs_nobody_in(
    sso: Served, provider: Provider, tamper: dict[str, Any], says: str
) -> None:
    provider.tamper = tamper
    if "discovery_issuer" in tamper:  # refused before leaving for the IdP
        sso.client.app.state.sso.idp.server_metadata.clear()  # type: ignore[attr-defined]
        start = sso.client.get("/console/sso/start", follow_redirects=False)
        refused(start, 502, says)
        return
    back = sign_in(sso, provider, ROSA)
    refused(back, 401, "Single sign-on did not sign you in", says)
    get(sso, "/console/runs", status=303)


def test_a_bad_state_is_refused(sso: Served, provider: Provider) -> None:
    provider.person = ROSA
    start = sso.client.get("/console/sso/start", follow_redirects=False)
    at_idp = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    parts = urlsplit(at_idp.headers["location"])
    code = parse_qs(parts.query)["code"][0]
    forged = f"/console/sso/callback?code={code}&state=forged-state"
    refused(sso.client.get(forged, follow_redirects=False), 401, "State not equal")
    assert provider.token_requests == []  # the code was never even redeemed


def test_a_callback_cannot_be_replayed(sso: Served, provider: Provider) -> None:
    """Replaying the callback with the flow cookie it came with: the state still matches
    (the cookie is the browser's), so it is the provider's one-time code that refuses."""
    provider.person = ROSA
    start = sso.client.get("/console/sso/start", follow_redirects=False)
    flow = sso.client.cookies["steward_sso"]
    at_idp = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    callback = at_idp.headers["location"]
    assert sso.client.get(callback, follow_redirects=False).status_code == 303
    sso.client.cookies.clear()
    sso.client.cookies.set("steward_sso", flow, path="/console/sso")  # the old flow cookie
    refused(sso.client.get(callback, follow_redirects=False), 401, "invalid_grant")
    sso.client.cookies.clear()  # and without it, the state is unknown
    refused(sso.client.get(callback, follow_redirects=False), 401, "State not equal")


def test_a_tampered_flow_cookie_is_refused(sso: Served, provider: Provider) -> None:
    provider.person = ROSA
    start = sso.client.get("/console/sso/start", follow_redirects=False)
    flow = sso.client.cookies["steward_sso"]
    at_idp = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    payload, stamp, signature = flow.rsplit(".", 2)
    forged = f"{payload}.{stamp}.{'A' * len(signature)}"
    sso.client.cookies.clear()
    sso.client.cookies.set("steward_sso", forged, path="/console/sso")
    back = sso.client.get(at_idp.headers["location"], follow_redirects=False)
    refused(back, 401, "State not equal")
    assert provider.token_requests == []


def test_an_idp_error_is_shown_not_raised(sso: Served, provider: Provider) -> None:
    start = sso.client.get("/console/sso/start", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    denied = (
        f"/console/sso/callback?error=access_denied&error_description=user+cancelled&state={state}"
    )
    refused(sso.client.get(denied, follow_redirects=False), 401, "user cancelled")


# -- configuration ----------------------------------------------------------------------


def test_the_sign_in_page_offers_sso_when_configured(sso: Served) -> None:
    assert 'href="/console/sso/start?next=/console/runs"' in get(sso, "/console/sign-in")


def test_without_settings_there_is_no_sso(served: Served) -> None:
    plain = get(served, "/console/sign-in")
    assert "single sign-on" not in plain
    refused(served.client.get("/console/sso/start", follow_redirects=False), 404, "not configured")


def test_cookies_are_secure_over_https(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> None:
    base = "https://testserver"
    for served in _serve(sqlite_db, tmp_path, monkeypatch, config(provider, base), base):
        provider.person = ROSA
        start = served.client.get("/console/sso/start", follow_redirects=False)
        flow = next(c for c in start.headers.get_list("set-cookie") if "steward_sso=" in c)
        attributes = {a.strip().lower() for a in flow.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/console/sso"} <= attributes
        at_idp = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
        back = served.client.get(at_idp.headers["location"], follow_redirects=False)
        cookie = session_cookie(back)
        assert cookie is not None and "Secure" in cookie


def test_settings_from_the_environment() -> None:
    assert SsoConfig.from_env({"PATH": "/bin"}) is None
    env = {
        "STEWARD_OIDC_ISSUER": "https://login.example.com/realms/bank",
        "STEWARD_OIDC_CLIENT_ID": "steward",
        "STEWARD_OIDC_CLIENT_SECRET": "s",
        "STEWARD_OIDC_REDIRECT_URL": "https://steward.example.com/console/sso/callback",
        "STEWARD_OIDC_ROLES": "ops = reviewer, admins=admin",
        "STEWARD_OIDC_ROLES_CLAIM": "realm_access.roles",
        "STEWARD_OIDC_NAME_CLAIM": "email",
    }
    found = SsoConfig.from_env(env)
    assert found is not None and found.secure_cookies
    assert found.discovery_url == (
        "https://login.example.com/realms/bank/.well-known/openid-configuration"
    )
    assert found.roles == {"ops": Role.REVIEWER, "admins": Role.ADMIN}
    assert found.name_claims == ("email",)
    nested = {"realm_access": {"roles": ["ops", "other"]}}
    assert role_for(found, nested) is Role.REVIEWER
    assert role_for(found, {"realm_access": {"roles": "admins"}}) is Role.ADMIN
    assert role_for(found, {"groups": ["ops"]}) is None  # another claim: fail closed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"STEWARD_OIDC_CLIENT_SECRET": ""}, "needs STEWARD_OIDC_CLIENT_SECRET"),
        ({"STEWARD_OIDC_ROLES": "ops=superuser"}, "role must be admin, reviewer or viewer"),
        ({"STEWARD_OIDC_ROLES": "ops=agent"}, "cannot be given the agent role"),
        ({"STEWARD_OIDC_ROLES": "ops"}, "'ops' is not group=role"),
        ({"STEWARD_OIDC_SCOPES": "profile"}, "must include `openid`"),
        ({"STEWARD_OIDC_ISSUER": "login.example.com"}, "STEWARD_OIDC_ISSUER"),
    ],
)
def test_bad_settings_name_the_variable(change: dict[str, str], message: str) -> None:
    env = {
        "STEWARD_OIDC_ISSUER": "https://login.example.com",
        "STEWARD_OIDC_CLIENT_ID": "steward",
        "STEWARD_OIDC_CLIENT_SECRET": "s",
        "STEWARD_OIDC_REDIRECT_URL": "https://steward.example.com/console/sso/callback",
        "STEWARD_OIDC_ROLES": "ops=reviewer",
        **change,
    }
    with pytest.raises(InvalidInput, match=message):
        SsoConfig.from_env(env)


def test_serve_stops_on_half_a_configuration(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steward.cli.main import app

    env = {"STEWARD_OIDC_ISSUER": "https://login.example.com", "STEWARD_OIDC_CLIENT_ID": "c"}
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}"], env=env)
    assert result.exit_code == 2, result.output
    assert "single sign-on needs STEWARD_OIDC_CLIENT_SECRET, STEWARD_OIDC_REDIRECT_URL" in (
        " ".join(result.output.split())
    )


def test_an_unreachable_provider_is_a_page_not_an_error(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> None:
    from .served import free_port

    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for served in _serve(sqlite_db, tmp_path, monkeypatch, config(provider, issuer=gone)):
        start = served.client.get("/console/sso/start", follow_redirects=False)
        refused(start, 502, "could not be reached", "ConnectError", "sign in with an API key")
        callback = served.client.get("/console/sso/callback?code=x&state=y")
        refused(callback, 401, "Single sign-on did not sign you in")


def test_an_admin_signs_a_person_out_from_the_cli(sso: Served, provider: Provider) -> None:
    from typer.testing import CliRunner

    from steward.cli.main import app

    sign_in(sso, provider, ROSA)
    get(sso, "/console/runs")
    result = CliRunner().invoke(app, ["keys", "sign-out", "rosa", "--db", sso.db.url])
    assert result.exit_code == 0 and "1 console session(s) of rosa ended" in result.output
    get(sso, "/console/runs", status=303)  # the browser's session is gone
    missing = CliRunner().invoke(app, ["keys", "sign-out", "nobody", "--db", sso.db.url])
    assert missing.exit_code == 3, missing.output


def test_only_console_paths_are_followed_after_sso(sso: Served, provider: Provider) -> None:
    for target in ("https://evil.example/", "//evil.example", "/v1/runs"):
        back = sign_in(sso, provider, ROSA, next_url=target)
        assert back.status_code == 303 and back.headers["location"] == "/console/runs"


@pytest.fixture
def sso_any(
    any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> Iterator[Served]:
    yield from _serve(any_db, tmp_path, monkeypatch, config(provider))


def test_the_flow_on_both_databases(sso_any: Served, provider: Provider) -> None:
    run_id, approval_id = waiting_run(sso_any)
    assert sign_in(sso_any, provider, VIC).status_code == 303
    refused_ = post(sso_any, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert refused_.status_code == 403
    post(sso_any, "/console/sign-out", {})
    assert sign_in(sso_any, provider, ROSA).status_code == 303
    done = post(sso_any, f"/console/approvals/{approval_id}/decide", {"decision": "approve"})
    assert done.status_code == 303
    assert get_approval(sso_any.db, approval_id).decided_by == "reviewer:rosa"
    sso_any.wait_for(run_id, "succeeded")


def test_without_the_extra_the_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "authlib.integrations.starlette_client", None)
    create_app("sqlite://")  # no SSO configured: Authlib is never needed
    with pytest.raises(InvalidInput, match=r"needs the `sso` extra .*steward-governance\[sso\]"):
        create_app("sqlite://", sso=config(provider))
