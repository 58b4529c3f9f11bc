"""The gateway through the official Python MCP client (SDK 2.x): what a caller lists, what
its calls do, approval over MCP (approve, reject, a restart between request and
decision), and the HTTP edges (401, malformed JSON-RPC)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

import httpx2

import steward
from steward.core.events import RunStarted
from steward.store.chain import verify_chain
from steward.store.keys import authenticate_token
from steward.store.runs import read_journal

from .served import GatewayProcess, make_gateway


def _call(result: Any) -> dict[str, Any]:
    meta: dict[str, Any] = (result.meta or {})["steward.dev/call"]
    return meta


async def decide(gw: GatewayProcess, approval_id: str, *, approve: bool, comment: str = "") -> None:
    """A reviewer decides through the approval service, as the API and console do."""
    async with steward.open(gw.db_url) as st:
        who = authenticate_token(st.db, gw.tokens["reviewer"])
        assert who is not None
        await st.approvals.decide(approval_id, who=who, approve=approve, comment=comment)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_each_identity_lists_exactly_what_its_policy_allows(
    gateway: GatewayProcess, mode: str
) -> None:
    async with gateway.client("desk", mode) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    # wipe is forbidden: absent; refund needs a person: present and marked
    assert sorted(listed) == ["echo", "note", "refund"]
    refund = listed["refund"]
    assert refund.description is not None and "approval" in refund.description
    assert (refund.meta or {})["steward.dev/decision"]["tier"] == "requires_human_review"
    assert (listed["echo"].meta or {})["steward.dev/decision"]["tier"] == "autonomous"
    assert listed["echo"].annotations is not None and listed["echo"].annotations.read_only_hint
    assert listed["refund"].input_schema["required"] == ["order_id", "amount_usd"]
    async with gateway.client("reader", mode) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["echo"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_allowed_call_runs_once_and_answers_its_result(
    gateway: GatewayProcess, mode: str
) -> None:
    async with gateway.client("desk", mode) as client:
        result = await client.call_tool("note", {"text": "hello"})
    assert not result.is_error
    assert result.content[0].text == "noted"  # type: ignore[union-attr]
    assert _call(result)["status"] == "executed" and _call(result)["run_id"].startswith("run_")
    assert gateway.effects("note") == [{"tool": "note", "text": "hello"}]
    # one call counted, and no tools/list behind it (the SDK's 2026-07-28 header check
    # asks the gateway for the input schema instead of listing)
    async with httpx2.AsyncClient(timeout=10) as http:
        metrics = await http.get(
            f"{gateway.base}/metrics",
            headers={"Authorization": f"Bearer {gateway.tokens['admin']}"},
        )
    assert 'steward_mcp_requests_total{method="tools/call",status="ok"} 1.0' in metrics.text
    # the client lists once itself (to check structured results); nothing else lists
    assert 'steward_mcp_requests_total{method="tools/list",status="ok"} 1.0' in metrics.text


async def test_forbidden_unlisted_invalid_and_conditioned_calls_are_denied(
    gateway: GatewayProcess,
) -> None:
    async with gateway.client("desk") as client:
        wipe = await client.call_tool("wipe", {"target": "everything"})
        unlisted = await client.call_tool("drop_tables", {})
        big = await client.call_tool("refund", {"order_id": "o1", "amount_usd": 900})
        invalid = await client.call_tool("refund", {"order_id": "o1"})
        other = await client.call_tool("refund", {"order_id": "o1", "amount_usd": 5})
    async with gateway.client("reader") as client:
        # the reader's spec does not list note: its identity selects its own policy
        not_theirs = await client.call_tool("note", {"text": "x"})
    for result, code in [(wipe, "tool.forbidden"), (unlisted, "tool.unlisted"),
                         (big, "condition.big-refund"), (not_theirs, "tool.unlisted")]:  # fmt: skip
        assert result.is_error, result
        assert _call(result)["status"] == "denied"
        assert _call(result)["code"] == code, _call(result)
        assert result.structured_content["code"] == code
    assert big.structured_content["reasons"][0]["rule"] == "condition.big-refund"
    assert invalid.is_error and _call(invalid)["code"].startswith("args.")
    assert _call(other)["status"] == "waiting"
    assert gateway.effects("wipe") == [] and gateway.effects("refund") == []
    assert gateway.effects("note") == []


async def test_review_then_approve_then_the_identical_call_runs_exactly_once(
    gateway: GatewayProcess,
) -> None:
    args = {"order_id": "o-42", "amount_usd": 30}
    async with gateway.client("desk") as client:
        first = await client.call_tool("refund", args)
        assert first.is_error and _call(first)["status"] == "waiting"
        approval = first.structured_content["approval_id"]
        assert approval.startswith("apr_") and approval in first.content[0].text  # type: ignore[union-attr]
        # asking again before anyone decided: the same request, not a second one
        again = await client.call_tool("refund", dict(reversed(list(args.items()))))
        assert _call(again)["approval_id"] == approval
        assert gateway.effects("refund") == []
        await decide(gateway, approval, approve=True, comment="ok")
        # the identical call, made three times at once: it runs exactly once; the
        # other two are then a new call, which asks a person again (one request)
        done = await asyncio.gather(*(client.call_tool("refund", args) for _ in range(3)))
        ran = [r for r in done if not r.is_error]
        assert len(ran) == 1, done
        assert ran[0].structured_content == {"refunded": "o-42", "amount_usd": 30}
        assert _call(ran[0])["call_id"] == _call(first)["call_id"]
        asked = {_call(r)["approval_id"] for r in done if r.is_error}
        assert len(asked) == 1 and approval not in asked
        assert len(gateway.effects("refund")) == 1
    assert gateway.effects("refund") == [{"tool": "refund", "order_id": "o-42", "amount_usd": 30}]


async def test_a_rejected_call_answers_the_reason_and_never_runs(gateway: GatewayProcess) -> None:
    args = {"order_id": "o-7", "amount_usd": 12.5}
    async with gateway.client("desk") as client:
        first = await client.call_tool("refund", args)
        approval = first.structured_content["approval_id"]
        await decide(gateway, approval, approve=False, comment="duplicate of o-6")
        retry = await client.call_tool("refund", args)
    assert retry.is_error and _call(retry)["status"] == "denied"
    assert _call(retry)["code"] == "approval.rejected", _call(retry)
    assert "duplicate of o-6" in retry.content[0].text  # type: ignore[union-attr]
    assert gateway.effects("refund") == []


async def test_a_gateway_restarted_between_request_and_decision_loses_nothing(
    tmp_path: Path,
) -> None:
    gw = make_gateway(tmp_path)
    gw.start()
    try:
        args = {"order_id": "o-9", "amount_usd": 40}
        async with gw.client("desk") as client:
            first = await client.call_tool("refund", args)
        approval = first.structured_content["approval_id"]
        gw.stop()
        await decide(gw, approval, approve=True)
        gw.start()
        async with gw.client("desk") as client:
            retry = await client.call_tool("refund", args)
            assert not retry.is_error, retry
            assert _call(retry)["call_id"] == _call(first)["call_id"]
            assert _call(retry)["run_id"] == _call(first)["run_id"]
            again = await client.call_tool("refund", args)
        assert _call(again)["status"] == "waiting"
        assert len(gw.effects("refund")) == 1
        # a call still pending across a restart is found again too
        gw.stop()
        gw.start()
        async with gw.client("desk") as client:
            same = await client.call_tool("refund", args)
        assert _call(same)["approval_id"] == _call(again)["approval_id"]
    finally:
        gw.stop()


async def test_bad_tokens_get_401_with_www_authenticate(gateway: GatewayProcess) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    bad = [
        None,
        "Bearer stw_000000000000_" + "A" * 43,  # well formed, unknown
        "Bearer not-a-key",
        f"Basic {gateway.tokens['desk']}",
        f"Bearer {gateway.tokens['admin']}",  # a person's key selects no agent
    ]
    async with httpx2.AsyncClient(timeout=10) as http:
        for auth in bad:
            sent = {**headers, **({"Authorization": auth} if auth else {})}
            response = await http.post(gateway.url, json=body, headers=sent)
            assert response.status_code == 401, (auth, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer ")
            assert response.json()["error"] == "invalid_token"


async def test_malformed_json_rpc_gets_a_json_rpc_error_never_a_500(
    gateway: GatewayProcess,
) -> None:
    auth = {"Authorization": f"Bearer {gateway.tokens['desk']}",
            "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}  # fmt: skip
    modern = {**auth, "MCP-Protocol-Version": "2026-07-28"}
    bodies: list[bytes] = [
        b"{",
        b"[]",
        b'"just a string"',
        b'{"jsonrpc": "2.0"}',
        b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
        b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": 5}}',
        b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"arguments": []}}',
        b"\xff\xfe not utf-8",
    ]
    async with httpx2.AsyncClient(timeout=10) as http:
        for headers in (auth, modern):
            for body in bodies:
                response = await http.post(gateway.url, content=body, headers=headers)
                assert response.status_code < 500, (body, response.status_code, response.text)
                assert response.status_code != 200 or "error" in response.text, body
                answer = json.loads(response.text.removeprefix("event: message\r\ndata: "))
                assert answer["jsonrpc"] == "2.0" and "error" in answer, (body, answer)
                assert isinstance(answer["error"]["code"], int)
    assert "Traceback" not in gateway.log()


async def test_calls_are_rate_limited_and_on_the_audit_chain(gateway: GatewayProcess) -> None:
    async with gateway.client("desk") as client:
        answers = [await client.call_tool("echo", {"text": str(i)}) for i in range(4)]
        denied = await client.call_tool("wipe", {"target": "x"})
    assert [a.is_error for a in answers] == [False, False, False, True]
    assert _call(answers[3])["code"] == "rate_limit.exceeded", _call(answers[3])
    run_id = _call(denied)["run_id"]
    async with steward.open(gateway.db_url) as st:
        entries = await asyncio.to_thread(read_journal, st.db, run_id)
        with st.db.reader.connect() as connection:
            chain = verify_chain(connection)
    kinds = [type(e.event).__name__ for e in entries]
    assert kinds[0] == "RunStarted" and kinds.count("ToolCallProposed") == 5, kinds
    started = entries[0].event
    assert isinstance(started, RunStarted)
    assert started.tags["gateway"] == "mcp" and started.tags["started_by"] == "agent:mcp-desk"
    assert chain.ok and chain.checked >= len(entries)
