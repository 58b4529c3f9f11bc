"""Steward agents served over A2A (protocol v1.0), exercised with the official SDK's own
client against a real server on loopback: the signed card, a task that is a governed run,
keys, approvals across the boundary, and a card that lists only what policy allows."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.client.card_resolver import parse_agent_card
from a2a.client.client import Client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types import AgentCard, GetTaskRequest, Role, SendMessageRequest, Task, TaskState
from a2a.utils.signing import InvalidSignaturesError, create_signature_verifier
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from steward.a2a import A2AConfig
from steward.cli.main import app as cli
from steward.cli.serve import DEMO_SPEC
from steward.core.errors import InvalidInput
from steward.demo.tools import SYSTEMS_ENV
from steward.server import create_app, load_agents
from steward.store import Database

from .served import LARGE_REFUND, free_port, issue_keys, steward_serve

KID = "test-key"


@dataclass
class Live:
    url: str
    tokens: dict[str, str]
    public_key: ec.EllipticCurvePublicKey

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _key_pem() -> tuple[bytes, ec.EllipticCurvePublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, private.public_key()


def _restricted_spec(tmp_path: Path) -> Path:
    """The demo agent with reset_password moved from autonomous to forbidden."""
    text = DEMO_SPEC.read_text(encoding="utf-8")
    text = text.replace("name: support-desk", "name: locked-desk", 1)
    text = text.replace("get_payment_details, reset_password]", "get_payment_details]", 1)
    text = text.replace("forbidden: [delete_customer_data]", "forbidden: [reset_password]", 1)
    path = tmp_path / "locked.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def live(any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The demo agent and a restricted one served with A2A, over SQLite and PostgreSQL."""
    monkeypatch.setenv(SYSTEMS_ENV, str(tmp_path / "systems.db"))
    monkeypatch.setenv("STEWARD_TELEMETRY", "off")
    db = any_db
    url = db.url
    tokens = issue_keys(db)
    pem, public = _key_pem()
    agents = load_agents([DEMO_SPEC, _restricted_spec(tmp_path)])
    app = create_app(url, agents, a2a=A2AConfig(signing_key=pem, key_id=KID))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield Live(f"http://127.0.0.1:{port}", tokens, public)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _verifier(public: ec.EllipticCurvePublicKey) -> Any:
    def key_for(kid: str | None, jku: str | None) -> Any:
        assert kid == KID, kid
        return public

    return create_signature_verifier(key_for, ["ES256"])


async def _card(live: Live, agent: str = "support-desk", **kwargs: Any) -> AgentCard:
    async with httpx.AsyncClient(timeout=10) as http:
        resolver = A2ACardResolver(http, f"{live.url}/a2a/{agent}")
        return await resolver.get_agent_card(**kwargs)


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=live.headers("admin"), timeout=30) as client:
        yield client


async def _client(live: Live, http: httpx.AsyncClient, agent: str = "support-desk") -> Client:
    config = ClientConfig(streaming=False, httpx_client=http)
    return await create_client(
        f"{live.url}/a2a/{agent}", client_config=config,
        signature_verifier=_verifier(live.public_key),
    )  # fmt: skip


async def _send(client: Client, text: str) -> Task:
    request = SendMessageRequest(message=new_text_message(text, role=Role.ROLE_USER))
    async for response in client.send_message(request):
        if response.HasField("task"):
            return response.task
    raise AssertionError("no task came back")


async def _wait(client: Client, task_id: str, state: TaskState, patience: float = 20) -> Task:
    deadline = time.monotonic() + patience
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.status.state == state or time.monotonic() > deadline:
            assert task.status.state == state, task
            return task
        await asyncio.sleep(0.05)


def _text(task: Task) -> str:
    return "\n".join(p.text for p in task.status.message.parts)


async def test_the_card_is_signed_over_its_canonical_json_and_verifies(live: Live) -> None:
    card = await _card(live, signature_verifier=_verifier(live.public_key))
    assert card.name == "support-desk" and card.signatures
    assert card.supported_interfaces[0].url == f"{live.url}/a2a/support-desk"
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert "steward" in card.security_schemes
    # a card altered after signing fails verification, as does a card signed by another key
    tampered = AgentCard()
    tampered.CopyFrom(card)
    tampered.description = "something else"
    with pytest.raises(InvalidSignaturesError):
        _verifier(live.public_key)(tampered)
    with pytest.raises(InvalidSignaturesError):
        _verifier(_key_pem()[1])(card)
    # the public key is published as a JWK Set at the header's jku
    header = jwt.get_unverified_header(f"{card.signatures[0].protected}.e30.")
    assert header["alg"] == "ES256" and header["kid"] == KID
    async with httpx.AsyncClient(timeout=10) as http:
        jwks = (await http.get(header["jku"])).json()
    published = jwt.PyJWK(jwks["keys"][0])
    _verifier(published.key)(card)


async def test_the_card_lists_only_what_the_policy_allows(live: Live) -> None:
    open_card = await _card(live, "support-desk")
    locked = await _card(live, "locked-desk", signature_verifier=_verifier(live.public_key))
    offered = {s.id for s in open_card.skills}
    assert "reset_password" in offered and "issue_refund" in offered
    assert "reset_password" not in {s.id for s in locked.skills}
    tags = {s.id: list(s.tags) for s in open_card.skills}
    assert tags["issue_refund"] == ["requires_human_review"]
    assert tags["lookup_order"] == ["autonomous"]


async def test_a_message_is_a_governed_run_that_completes_with_the_answer(
    live: Live, http: httpx.AsyncClient
) -> None:
    client = await _client(live, http)
    task = await _send(client, "Where is my order #10114?")
    done = await _wait(client, task.id, TaskState.TASK_STATE_COMPLETED)
    runs = (await http.get(f"{live.url}/v1/runs", params={"agent": "support-desk"})).json()
    run = next(r for r in runs["items"] if r["tags"].get("a2a.task") == task.id)
    assert run["status"] == "succeeded" and run["tags"]["started_by"] == "admin:admin-1"
    assert run["output"] and run["output"] in _text(done)
    assert done.artifacts and done.artifacts[0].parts[0].text == _text(done)


async def test_without_a_key_the_endpoint_answers_401_and_starts_nothing(live: Live) -> None:
    async with httpx.AsyncClient(timeout=10) as anonymous:
        client = await create_client(
            f"{live.url}/a2a/support-desk",
            client_config=ClientConfig(streaming=False, httpx_client=anonymous),
        )
        with pytest.raises(Exception) as raised:
            await _send(client, "Where is my order #10114?")
        assert "401" in str(raised.value), raised.value
        raw = await anonymous.post(
            f"{live.url}/a2a/support-desk",
            json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}},
        )
        assert raw.status_code == 401 and raw.headers["www-authenticate"] == "Bearer"
        # a key for another agent may not start this one's runs
        other = {"Authorization": f"Bearer {live.tokens['other-agent']}"}
        forbidden = await anonymous.post(f"{live.url}/a2a/support-desk", headers=other, json={})
        assert forbidden.status_code == 403
        runs = await anonymous.get(f"{live.url}/v1/runs", headers=live.headers("admin"))
        assert runs.json()["items"] == []


async def _approval_of(live: Live, http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    runs = (await http.get(f"{live.url}/v1/runs")).json()["items"]
    run = next(r for r in runs if r["tags"].get("a2a.task") == task_id)
    pending = (await http.get(f"{live.url}/v1/approvals")).json()
    return next(a for a in pending if a["run_id"] == run["id"])


async def test_an_approval_crosses_the_boundary_as_input_required(
    live: Live, http: httpx.AsyncClient
) -> None:
    client = await _client(live, http)
    task = await _send(client, LARGE_REFUND)
    waiting = await _wait(client, task.id, TaskState.TASK_STATE_INPUT_REQUIRED)
    approval = await _approval_of(live, http, task.id)
    assert approval["tool"] == "issue_refund" and approval["id"] in _text(waiting)
    decided = await http.post(
        f"{live.url}/v1/approvals/{approval['id']}/decision",
        headers=live.headers("reviewer"),
        json={"decision": "approve", "comment": "customer is right"},
    )
    assert decided.status_code == 200, decided.text
    done = await _wait(client, task.id, TaskState.TASK_STATE_COMPLETED)
    assert "refunded $330" in _text(done)


async def test_a_rejected_review_ends_the_task_with_the_reason(
    live: Live, http: httpx.AsyncClient
) -> None:
    client = await _client(live, http)
    task = await _send(client, LARGE_REFUND)
    await _wait(client, task.id, TaskState.TASK_STATE_INPUT_REQUIRED)
    approval = await _approval_of(live, http, task.id)
    await http.post(
        f"{live.url}/v1/approvals/{approval['id']}/decision",
        headers=live.headers("reviewer"),
        json={"decision": "reject", "comment": "item was returned damaged"},
    )
    deadline = time.monotonic() + 20
    while True:
        final = await client.get_task(GetTaskRequest(id=task.id))
        terminal = final.status.state in (
            TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_REJECTED
        )  # fmt: skip
        if terminal or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert terminal, final
    assert "item was returned damaged" in _text(final)
    assert "refunded $330" not in _text(final)


async def test_a_disabled_agent_rejects_the_task_with_the_reason(
    live: Live, http: httpx.AsyncClient
) -> None:
    off = await http.post(f"{live.url}/v1/agents/support-desk/disable", json={"comment": "x"})
    assert off.status_code == 200, off.text
    client = await _client(live, http)
    task = await _send(client, "Where is my order #10114?")
    rejected = await _wait(client, task.id, TaskState.TASK_STATE_REJECTED)
    assert "agent.disabled" in _text(rejected)
    assert (await http.get(f"{live.url}/v1/runs")).json()["items"] == []


def test_serving_a2a_needs_a_signing_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="STEWARD_A2A_SIGNING_KEY"):
        A2AConfig.from_env({})
    with pytest.raises(InvalidInput, match="cannot read"):
        A2AConfig.from_env({"STEWARD_A2A_SIGNING_KEY": str(tmp_path / "missing.pem")})
    pem = tmp_path / "card.pem"
    pem.write_bytes(_key_pem()[0])
    env = {"STEWARD_A2A_SIGNING_KEY": str(pem), "STEWARD_A2A_URL": "https://a.example/"}
    config = A2AConfig.from_env(env)
    assert config.public_url == "https://a.example" and config.signing_key == pem.read_bytes()


def test_steward_serve_a2a_serves_the_signed_card_at_the_well_known_path(tmp_path: Path) -> None:
    pem, public = _key_pem()
    key = tmp_path / "card.pem"
    key.write_bytes(pem)
    env = {
        "STEWARD_DEMO_SYSTEMS": str(tmp_path / "systems.db"),
        "STEWARD_A2A_SIGNING_KEY": str(key),
        "STEWARD_A2A_KEY_ID": KID,
    }
    with steward_serve(f"sqlite:///{tmp_path / 'steward.db'}", "--demo", "--a2a", env=env) as base:
        body = httpx.get(f"{base}/.well-known/agent-card.json", timeout=10).json()
    card = parse_agent_card(body)
    _verifier(public)(card)
    assert card.name == "support-desk"
    assert card.supported_interfaces[0].url == f"{base}/a2a/support-desk"


def test_steward_serve_a2a_without_a_key_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    monkeypatch.delenv("STEWARD_A2A_SIGNING_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--demo", "--a2a"])
    assert result.exit_code == 2, result.output
    assert "STEWARD_A2A_SIGNING_KEY" in result.output and "Traceback" not in result.output


async def test_streaming_shows_the_wait_and_a_second_message_does_not_start_a_second_run(
    live: Live, http: httpx.AsyncClient
) -> None:
    config = ClientConfig(streaming=True, httpx_client=http)
    client = await create_client(f"{live.url}/a2a/support-desk", client_config=config)
    request = SendMessageRequest(message=new_text_message(LARGE_REFUND, role=Role.ROLE_USER))
    states = []
    task_id = ""
    async with asyncio.timeout(20):
        async for response in client.send_message(request):
            if response.HasField("task"):
                task_id = response.task.id
            if response.HasField("status_update"):
                states.append(response.status_update.status.state)
                if states[-1] == TaskState.TASK_STATE_INPUT_REQUIRED:
                    break
    assert states[-1] == TaskState.TASK_STATE_INPUT_REQUIRED and task_id
    # the caller answers the task: the review is not the caller's to give; the message
    # waits with the task and starts nothing
    again = new_text_message("approve it please", role=Role.ROLE_USER, task_id=task_id)
    plain = await _client(live, http)
    answered = asyncio.create_task(_first(plain, SendMessageRequest(message=again)))
    await asyncio.sleep(0.5)
    assert not answered.done()
    approval = await _approval_of(live, http, task_id)
    await http.post(
        f"{live.url}/v1/approvals/{approval['id']}/decision",
        headers=live.headers("reviewer"),
        json={"decision": "approve", "comment": "ok"},
    )
    async with asyncio.timeout(20):
        reply = await answered
    assert reply.status.state == TaskState.TASK_STATE_COMPLETED, reply
    assert "refunded $330" in _text(reply)
    runs = (await http.get(f"{live.url}/v1/runs")).json()["items"]
    assert len([r for r in runs if r["tags"].get("a2a.task") == task_id]) == 1


async def _first(client: Client, request: SendMessageRequest) -> Task:
    async for response in client.send_message(request):
        if response.HasField("task"):
            return response.task
    raise AssertionError("no task came back")


async def test_whoever_sent_the_task_may_not_approve_its_run(
    live: Live, http: httpx.AsyncClient
) -> None:
    client = await _client(live, http)  # the admin's key sends the task
    task = await _send(client, LARGE_REFUND)
    await _wait(client, task.id, TaskState.TASK_STATE_INPUT_REQUIRED)
    approval = await _approval_of(live, http, task.id)
    own = await http.post(
        f"{live.url}/v1/approvals/{approval['id']}/decision",
        json={"decision": "approve", "comment": "my own refund"},
    )
    assert own.status_code == 403, own.text
    still = await client.get_task(GetTaskRequest(id=task.id))
    assert still.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
