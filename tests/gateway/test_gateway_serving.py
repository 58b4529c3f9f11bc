"""The gateway mounted in `steward serve --mcp` (a person decides through the REST API it
names), and a call held open with progress notifications until a person decides."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp_types", reason="the gateway needs the MCP SDK 2.x (the `mcp` extra)")

import httpx2

from .served import make_gateway
from .test_gateway_client import _call, decide


async def test_serve_mounts_the_gateway_and_names_the_api_where_people_decide(
    tmp_path: Path,
) -> None:
    gw = make_gateway(tmp_path, command=("serve", "--mcp", "--no-recover"))
    gw.start()
    try:
        args = {"order_id": "s-1", "amount_usd": 25}
        async with gw.client("desk") as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == [
                "echo",
                "note",
                "refund",
            ]
            first = await client.call_tool("refund", args)
            decide_at = first.structured_content["decide"]
            approval = first.structured_content["approval_id"]
            assert decide_at["console"] == f"{gw.base}/console/approvals/{approval}"
            assert decide_at["api"] == f"POST {gw.base}/v1/approvals/{approval}/decision"
            async with httpx2.AsyncClient(timeout=10) as http:
                answer = await http.post(
                    f"{gw.base}/v1/approvals/{approval}/decision",
                    json={"decision": "approve", "comment": "fine"},
                    headers={"Authorization": f"Bearer {gw.tokens['reviewer']}"},
                )
                assert answer.status_code == 200, answer.text
                # the API beside the gateway still needs its own keys' rights
                listed = await http.get(
                    f"{gw.base}/v1/runs", headers={"Authorization": f"Bearer {gw.tokens['admin']}"}
                )
                assert any(r["tags"].get("gateway") == "mcp" for r in listed.json()["items"])
            ran = await client.call_tool("refund", args)
        assert not ran.is_error, ran
        assert gw.effects("refund") == [{"tool": "refund", "order_id": "s-1", "amount_usd": 25}]
    finally:
        gw.stop()


async def test_a_held_call_reports_progress_and_runs_when_a_person_decides_in_time(
    tmp_path: Path,
) -> None:
    gw = make_gateway(tmp_path, "--hold-seconds", "20")
    gw.start()
    try:
        seen: list[tuple[float, float | None, str | None]] = []

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async def approve_when_asked() -> None:
            async with gw.client("desk"):
                pass
            for _ in range(200):
                approvals = await _pending(gw)
                if approvals:
                    await decide(gw, approvals[0], approve=True)
                    return
                await asyncio.sleep(0.1)

        args = {"order_id": "h-1", "amount_usd": 10}
        async with gw.client("desk") as client:
            deciding = asyncio.create_task(approve_when_asked())
            result = await client.call_tool("refund", args, progress_callback=progress)
            await deciding
        assert not result.is_error, result
        assert _call(result)["status"] == "executed" and _call(result)["held"] is True
        assert seen and seen[0][1] == 20 and "approval" in (seen[0][2] or "")
        assert len(gw.effects("refund")) == 1
    finally:
        gw.stop()


async def _pending(gw: Any) -> list[str]:
    import steward
    from steward.store.approvals import list_approvals

    async with steward.open(gw.db_url) as st:
        return [row.id for row in await asyncio.to_thread(list_approvals, st.db, "pending")]


def test_the_gateway_refuses_to_start_without_an_agent_it_can_serve(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .served import SRC

    demo = SRC / "steward" / "demo" / "support_agent.yaml"  # `model: rules`: steward's own loop
    done = subprocess.run(
        [sys.executable, "-c", "from steward.cli.main import main; main()", "gateway",
         "--agent", str(demo), "--db", f"sqlite:///{tmp_path / 's.db'}"],
        env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "model: external" in done.stderr and "Traceback" not in done.stderr
