"""A refund agent whose loop is its own program's, governed through `import steward`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import steward
from steward.testing.postgres import postgres_schema

SPEC = """\
name: refund-agent
model: external
tools: [lookup_order, issue_refund, send_note]
decision_authority:
  autonomous: [lookup_order, send_note]
  requires_human_review: [issue_refund]
rate_limits:
  send_note: 2/hour
cost_controls:
  max_cost_per_run_usd: 0.01
"""

REFUND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount_usd": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["order_id", "amount_usd"],
    "additionalProperties": False,
}


@dataclass
class Ledger:
    """What the tools did: each refund and note, in order."""

    refunds: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def tools(self) -> list[steward.Tool]:
        def lookup_order(order_id: str) -> dict[str, Any]:
            return {"order_id": order_id, "total_usd": 40.0}

        def issue_refund(order_id: str, amount_usd: float) -> dict[str, Any]:
            self.refunds.append({"order_id": order_id, "amount_usd": amount_usd})
            return {"refund_id": f"rf_{len(self.refunds)}", "amount_usd": amount_usd}

        async def send_note(text: str) -> str:
            self.notes.append(text)
            return "sent"

        return [
            steward.external_tool("lookup_order", lookup_order, effect="read"),
            steward.external_tool("issue_refund", issue_refund, parameters=REFUND_SCHEMA),
            steward.external_tool("send_note", send_note),
        ]


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "refund.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each facade test on SQLite, and on PostgreSQL when STEWARD_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steward.db'}"
        return
    base = os.environ.get("STEWARD_TEST_POSTGRES_URL", "")
    if not base:
        if os.environ.get("CI"):
            pytest.fail(
                "STEWARD_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests"
            )
        pytest.skip("PostgreSQL tests skipped: set STEWARD_TEST_POSTGRES_URL to run them")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
async def st(db_url: str, specs: Path) -> AsyncIterator[steward.Steward]:
    async with steward.open(db_url, specs=specs) as opened:
        yield opened
