"""Write tests/data/golden-journal.sqlite: a journal written by the code of its day, for
tests/store/test_golden_journal.py to prove it still decodes, replays and verifies.

Never regenerate it to make that test pass: it stands for databases already in the field.
Run once per release that adds event types or versions, into a new file name, keeping the
old ones (PYTHONPATH=src python tests/data/make_golden_journal.py tests/data/NAME.sqlite).

What it holds: a real run through the Runner (a tool call, a call held for review,
approved, resumed, executed, an answer), a real denial, a rejected approval, the agent's
kill switch and mode, keys issued and revoked, feedback; then one run written event by
event so that every type of the day is on the chain at least once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from steward.core import events as ev
from steward.core.decision import Decision, Reason, Verdict
from steward.core.messages import ModelResponse, Source, ToolCall, Usage
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.security.keys import Role
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.store.agents import set_agent_state
from steward.store.approvals import decide_approval
from steward.store.feedback import give_feedback
from steward.store.keys import create_key, revoke_key
from steward.store.sso import sign_in
from steward.testing import ScriptedModel, calls, final
from steward.tools import ToolContext, tool

SPEC = """
name: refunds
model: scripted
prompt: You handle refunds.
tools: [lookup_order, refund]
decision_authority:
  autonomous: [lookup_order]
  requires_human_review: [refund]
limits: {max_steps: 6, max_run_seconds: 30}
escalation: {confidence_below: 0.5, to: humans}
"""


@tool(effect="read")
async def lookup_order(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": "delivered", "total_usd": 59.9}


@tool(effect="write", keyed=True)
async def refund(order_id: str, amount_usd: float, ctx: ToolContext) -> dict[str, Any]:
    return {"refunded": amount_usd, "order_id": order_id, "key": ctx.idempotency_key}


USAGE = Usage(input_tokens=812, output_tokens=41, cost_usd=0.00123)


def agent(responses: list[ModelResponse]) -> Any:
    loaded = load_spec_text(SPEC, "refunds.yaml")
    return build_agent(loaded, [lookup_order, refund], model=ScriptedModel(responses))


async def write(db: Database) -> None:
    journal = Journal(db)
    runner = Runner(EmbeddedEngine(db, journal))
    publish = journal.publish
    try:
        # 1. lookup, refund held for review, approved, resumed, executed, answered
        first = agent(
            [
                calls(("lookup_order", {"order_id": "A-1001"}), usage=USAGE),
                calls(("refund", {"order_id": "A-1001", "amount_usd": 59.9}), usage=USAGE),
                final("Refunded $59.90 for order A-1001.", 0.93, usage=USAGE),
            ]
        )
        waiting = await runner.run(first, "Please refund order A-1001, it arrived broken.")
        decide_approval(db, waiting.waiting_on[0], approve=True, by="alice", on_commit=publish)
        await runner.resume(first, waiting.run_id)
        give_feedback(db, waiting.run_id, verdict="correct", by="alice", on_commit=publish)

        # 2. a refund rejected by a person; the model gives up
        second = agent(
            [
                calls(("refund", {"order_id": "A-2002", "amount_usd": 500.0}), usage=USAGE),
                final("I could not refund this order.", 0.4, usage=USAGE),
            ]
        )
        held = await runner.run(second, "Refund A-2002 in full.")
        decide_approval(
            db, held.waiting_on[0], approve=False, by="bob", comment="over the limit",
            on_commit=publish,
        )  # fmt: skip
        await runner.resume(second, held.run_id)

        # 3. a tool the agent does not have: denied by the gate
        third = agent(
            [calls(("wire_money", {"to": "XX00"}), usage=USAGE), final("Done.", 0.9, usage=USAGE)]
        )
        await runner.run(third, "Wire the money.")

        # 4. the kill switch, the mode, keys
        set_agent_state(db, "refunds", by="ops", enabled=False, comment="incident 7",
                        on_commit=publish)  # fmt: skip
        set_agent_state(db, "refunds", by="ops", enabled=True, on_commit=publish)
        row, _token = create_key(db, name="carol", role=Role.REVIEWER, by="admin",
                                 on_commit=publish)  # fmt: skip
        revoke_key(db, row.id, by="admin", comment="left the team", on_commit=publish)
        sign_in(db, issuer="https://idp.example", subject="u-dana", name="dana",
                role=Role.VIEWER, on_commit=publish)  # fmt: skip

        # 5. one run, event by event, so every type of the day is on the chain
        run = "run_golden_every_type"
        key = f"{run}:0:call_0"
        call = ToolCall("call_0", "refund", {"order_id": "A-3003", "amount_usd": 10.0})
        allow = Decision(Verdict.ALLOW, rule_ids=("refund-small",))
        transform = Decision(
            Verdict.TRANSFORM, (Reason("scan.pii", "an e-mail address was masked"),)
        )
        finding = ev.Finding("email", "regex", "$.note", 0.99, 0, 16)
        response = ModelResponse("scripted", tool_calls=(call,), finish_reason="tool_calls",
                                 usage=USAGE)  # fmt: skip
        for event in (
            ev.RunQueued("refunds", "v-golden", "refund A-3003", {"channel": "email"}, ("email",)),
            ev.RunStarted("refunds", "v-golden", "refund A-3003", {"channel": "email"}, ("email",)),
            ev.ModelFailed("openai:gpt-x", "primary", "model.timeout", "timed out", 1, 30000.0, 0),
            ev.ModelBreakerOpened("primary", 3, 30.0),
            ev.ModelBreakerClosed("primary"),
            ev.ModelResponded(0, response, 412.5, "reason", False),
            ev.ToolCallProposed(0, call, key, {"order_id": Source.USER}),
            ev.RateSlotTaken(key, "refund", 1, 10),
            ev.GateDecided(key, "refund", "policy", allow),
            ev.ApprovalRequested(
                "apr_golden",
                "refunds",
                key,
                "refund",
                dict(call.arguments),
                "0" * 64,
                1_900_000_000.0,
                "refunds need a person",
            ),
            ev.RunWaiting("waiting for apr_golden", ("apr_golden",)),
            ev.ApprovalDecided("apr_golden", key, "approved", "dana", "ok", None, "prn_dana"),
            ev.RunResumed("approval decided", "refunds"),
            ev.ApprovalUsed("apr_golden", key, "0" * 64),
            ev.ToolStarted(key, "refund", 1),
            ev.ToolFailed(
                key, "refund", "tool.timeout", "timed out", 1, False, 5000.0, "cancelled"
            ),
            ev.ToolStarted(key, "refund", 2),
            ev.ResultScanned(key, "refund", transform, ("email",), (finding,)),
            ev.ToolSucceeded(key, "refund", {"refunded": 10.0, "note": "[EMAIL]"}, 88.0, 2, 0.01),
            ev.BreakerTripped("refund", 5, 60.0),
            ev.BudgetThresholdCrossed("refunds", 8.5, 10.0, 0.8, "https://hooks.example/x"),
            ev.RunFinished(ev.RunStatus.SUCCEEDED, "Refunded $10.", 0.9, "", "", 1),
            ev.FeedbackGiven("incorrect", "erin", "Refunded $10.00.", "cents"),
        ):
            journal.append(run, event)
        await journal.flush()
    finally:
        journal.close()


def main(path: Path) -> None:
    if path.exists():
        raise SystemExit(f"{path} exists: golden journals are written once, never replaced")
    db = Database.open(f"sqlite:///{path}")
    try:
        asyncio.run(write(db))
        revision = db.current_revision()
    finally:
        db.close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    connection.execute("VACUUM")
    types = sorted({r[0] for r in connection.execute("SELECT type FROM events")})
    count, head = connection.execute("SELECT last_id, last_hash FROM chain_head").fetchone()
    connection.close()
    missing = sorted({ev.tag_of(t) for t in ev.EVENT_TYPES} - set(types))
    if missing:
        raise SystemExit(f"not every event type was written: {missing}")
    manifest = {"events": count, "head_hash": head, "revision": revision, "types": types}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {path}: {count} events, head {head}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
