"""The support desk's tools, bound to the local systems (a SQLite orders/CRM database and
a knowledge base). Writes are keyed: the systems record the idempotency key in the same
transaction as the effect, so a retried or resumed call never acts twice."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from steward.demo.systems import SupportSystems
from steward.tools import Tool, ToolContext, tool

SYSTEMS_ENV = "STEWARD_DEMO_SYSTEMS"
DEFAULT_SYSTEMS = ".steward/support-systems.db"

# Money is a positive, finite amount: a refund of $0, -$5 or -inf never reaches policy
# (whose `amount_usd <= 50` condition would otherwise let a negative one through).
PositiveUsd = Annotated[float, Field(gt=0)]

_open: dict[str, SupportSystems] = {}
_lock = threading.Lock()


def systems_path() -> Path:
    return Path(os.environ.get(SYSTEMS_ENV) or DEFAULT_SYSTEMS)


def open_systems(path: Path | None = None) -> SupportSystems:
    target = (path or systems_path()).resolve()
    with _lock:
        found = _open.get(str(target))
        if found is None:
            found = (
                SupportSystems.open(target) if target.exists() else SupportSystems.create(target)
            )
            _open[str(target)] = found
        return found


def reset_systems(path: Path | None = None) -> SupportSystems:
    """Fresh systems for a demo run (drops any earlier state at that path)."""
    target = (path or systems_path()).resolve()
    with _lock:
        old = _open.pop(str(target), None)
        if old is not None:
            old.close()
        fresh = SupportSystems.create(target)
        _open[str(target)] = fresh
        return fresh


def support_tools(path: Path | None = None) -> list[Tool]:
    """The toolset named in the demo spec; systems at `path` or $STEWARD_DEMO_SYSTEMS."""
    systems = open_systems(path)

    @tool(
        effect="read",
        data_classes=("internal",),
        idempotent=True,
        limit_arg="limit",
        retrieves=True,
    )
    def search_kb(query: str, limit: int = 3) -> list[dict[str, Any]]:
        """Search the help-centre knowledge base."""
        return systems.search_kb(query, limit)

    @tool(effect="read", idempotent=True)
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Status, carrier, tracking and ETA of an order."""
        return systems.lookup_order(order_id)

    @tool(effect="read", data_classes=("pii",), idempotent=True)
    def get_customer(email: str) -> dict[str, Any]:
        """A customer's profile: name, email, phone, address."""
        return systems.get_customer(email)

    @tool(effect="read", data_classes=("financial",), idempotent=True)
    def get_payment_details(email: str) -> dict[str, Any]:
        """The card a customer pays with."""
        return systems.get_payment_details(email)

    @tool(effect="write", keyed=True)
    def issue_refund(
        order_id: str, amount_usd: PositiveUsd, reason: str, ctx: ToolContext
    ) -> dict[str, Any]:
        """Refund part or all of an order."""
        return systems.issue_refund(order_id, amount_usd, reason, ctx.idempotency_key)

    @tool(effect="write", keyed=True)
    def reset_password(email: str, ctx: ToolContext) -> dict[str, Any]:
        """Send a password-reset link to the account's email."""
        return systems.reset_password(email, ctx.idempotency_key)

    @tool(effect="write", data_classes=("pii",), keyed=True)
    def send_email(to: str, subject: str, body: str, ctx: ToolContext) -> dict[str, Any]:
        """Email a customer."""
        return systems.send_email(to, subject, body, ctx.idempotency_key)

    @tool(effect="write", data_classes=("pii",), keyed=True)
    def delete_customer_data(email: str, ctx: ToolContext) -> dict[str, Any]:
        """Erase a customer's personal data."""
        return systems.delete_customer_data(email, ctx.idempotency_key)

    return [
        search_kb,
        lookup_order,
        get_customer,
        get_payment_details,
        issue_refund,
        reset_password,
        send_email,
        delete_customer_data,
    ]
