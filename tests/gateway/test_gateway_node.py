"""The gateway through an independent MCP client: the official TypeScript SDK under node
(tests/gateway/node: package.json and package-lock.json are committed, node_modules is
not; `npm ci --offline` there, or the test skips, and fails when CI=true)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

from .served import GatewayProcess
from .test_gateway_client import decide

NODE_DIR = Path(__file__).resolve().parent / "node"
READY = (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()

if not READY or shutil.which("node") is None:
    message = (
        "the TypeScript MCP client is not installed: run `npm ci --offline` (or `npm ci`) in "
        f"{NODE_DIR}"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def node(gw: GatewayProcess, *args: str, who: str = "desk", token: str | None = None) -> Any:
    env = {**os.environ, "GATEWAY_URL": gw.url, "TOKEN": token or gw.tokens[who]}
    done = subprocess.run(
        ["node", "client.mjs", *args], cwd=NODE_DIR, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_typescript_client_lists_calls_and_waits_for_approval(
    gateway: GatewayProcess,
) -> None:
    listed = node(gateway, "list")
    names = sorted(t["name"] for t in listed["tools"])
    assert names == ["echo", "note", "refund"]
    refund = next(t for t in listed["tools"] if t["name"] == "refund")
    assert refund["_meta"]["steward.dev/decision"]["tier"] == "requires_human_review"

    allowed = node(gateway, "call", "note", json.dumps({"text": "from node"}))
    assert allowed.get("isError") in (None, False), allowed
    assert allowed["content"][0]["text"] == "noted"
    assert gateway.effects("note") == [{"tool": "note", "text": "from node"}]

    forbidden = node(gateway, "call", "wipe", json.dumps({"target": "all"}))
    assert forbidden["isError"] is True
    assert forbidden["structuredContent"]["code"] == "tool.forbidden"

    args = json.dumps({"order_id": "n-1", "amount_usd": 20})
    waiting = node(gateway, "call", "refund", args)
    assert waiting["isError"] is True
    assert waiting["structuredContent"]["status"] == "awaiting_approval"
    approval = waiting["structuredContent"]["approval_id"]
    await decide(gateway, approval, approve=True)
    ran = node(gateway, "call", "refund", args)
    assert ran.get("isError") in (None, False), ran
    assert ran["structuredContent"] == {"refunded": "n-1", "amount_usd": 20}
    again = node(gateway, "call", "refund", args)
    assert again["structuredContent"]["status"] == "awaiting_approval"
    assert gateway.effects("refund") == [{"tool": "refund", "order_id": "n-1", "amount_usd": 20}]


def test_the_typescript_client_is_refused_with_401_and_malformed_json_gets_an_error(
    gateway: GatewayProcess,
) -> None:
    refused = node(gateway, "list", token="stw_000000000000_" + "B" * 43)
    assert refused["code"] == 401 and "invalid_token" in refused["error"], refused
    for body in ["{", "[]", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 7}']:
        raw = node(gateway, "raw", body)
        assert 400 <= raw["status"] < 500, raw
        answer = json.loads(raw["body"])
        assert answer["jsonrpc"] == "2.0" and isinstance(answer["error"]["code"], int)
