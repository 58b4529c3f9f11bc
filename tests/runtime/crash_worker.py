"""A run that the crash test kills with SIGKILL (STEWARD_CRASH_AT=N) and resumes.

Usage: crash_worker.py DB_PATH SYSTEMS_PATH RUN_ID
Starts the run, or resumes it if the journal already has it. Prints the final status.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgspec

from steward.core.errors import NotFoundError
from steward.demo.fixtures import CUSTOMERS_BY_ID, ORDERS_BY_ID
from steward.demo.systems import SupportSystems
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import AgentRuntime, Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.runs import get_run
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: crashy
model: scripted
tools: [lookup_order, issue_refund, reset_password, note]
decision_authority:
  autonomous: [lookup_order, issue_refund, reset_password, note]
data_access: {allow_pii: true}
limits: {max_steps: 5, max_run_seconds: 60}
"""

SCRIPT = [
    calls(
        ("lookup_order", {"order_id": "10005"}),
        ("issue_refund", {"order_id": "10005", "amount_usd": 1.0}),
        ("reset_password", {"email": "EMAIL"}),
    ),
    calls(("issue_refund", {"order_id": "10006", "amount_usd": 2.0}), ("note", {"text": "done"})),
    final("refunded twice, reset once", 0.9),
]


def build(systems: SupportSystems, email: str, log: Path) -> AgentRuntime:
    def logged(name: str, key: str) -> None:
        with log.open("a") as handle:
            handle.write(f"{name} {key}\n")

    @tool(effect="read", idempotent=True)
    def lookup_order(order_id: str) -> dict[str, object]:
        return systems.lookup_order(order_id)

    @tool(effect="write", keyed=True)
    def issue_refund(order_id: str, amount_usd: float, ctx: ToolContext) -> dict[str, object]:
        result = systems.issue_refund(order_id, amount_usd, "crash test", ctx.idempotency_key)
        logged("issue_refund", ctx.idempotency_key)
        return result

    @tool(effect="write", keyed=True)
    def reset_password(email: str, ctx: ToolContext) -> dict[str, object]:
        result = systems.reset_password(email, ctx.idempotency_key)
        logged("reset_password", ctx.idempotency_key)
        return result

    @tool(effect="read")
    def note(text: str) -> str:
        return text

    script = [
        msgspec.structs.replace(
            r,
            tool_calls=tuple(
                msgspec.structs.replace(
                    c, arguments={k: email if v == "EMAIL" else v for k, v in c.arguments.items()}
                )
                for c in r.tool_calls
            ),
        )
        for r in SCRIPT
    ]
    loaded = load_spec_text(SPEC, "crashy.yaml")
    return build_agent(
        loaded, [lookup_order, issue_refund, reset_password, note], model=ScriptedModel(script)
    )


async def main(db_path: str, systems_path: str, run_id: str) -> None:
    systems = SupportSystems.open(systems_path)
    email = CUSTOMERS_BY_ID[ORDERS_BY_ID["10005"].customer_id].email
    agent = build(systems, email, Path(systems_path).with_suffix(".log"))
    db = Database.open(f"sqlite:///{db_path}")
    journal = Journal(db)
    runner = Runner(EmbeddedEngine(db, journal))
    try:
        try:
            get_run(db, run_id)
        except NotFoundError:
            result = await runner.run(agent, "refund please", run_id=run_id)
        else:
            result = await runner.resume(agent, run_id)
    finally:
        journal.close()
    print(result.status.value)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
