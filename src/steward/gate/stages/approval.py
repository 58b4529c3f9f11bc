"""Approval: a `review` decision parks the call as a pending approval and the run waits.

An approval is bound to the SHA-256 of the canonical call (tool, arguments, agent
version), expires, and is used once. Approved-with-edits arguments are a new call: they
are validated and decided by policy again before they run.

A question for a person (`ask_human`, tools/builtin.py) always takes this path, whatever
the policy's verdict short of deny: nothing but a person can answer it. It never reaches
the execute stage; the approval's comment is the answer and ends the call here as
executed, with `{"answer": ...}` as its result (recorded as the call's ToolSucceeded, so
a resumed run replays it and the approval is used once).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from steward.core.approval import ApprovalView
from steward.core.decision import Verdict, allow, deny
from steward.core.events import ApprovalRequested, ApprovalUsed, ToolSucceeded, canonical_json
from steward.core.messages import ToolCall
from steward.gate.context import CallContext, Next
from steward.gate.outcome import CallOutcome, CallStatus
from steward.policy import PolicyContext
from steward.security.scanners import IDENTIFIERS, redact_text


def call_hash(tool: str, arguments: dict[str, Any], agent_version: str) -> str:
    body = canonical_json({"tool": tool, "arguments": arguments, "agent_version": agent_version})
    return hashlib.sha256(body).hexdigest()


class ApprovalStage:
    name = "approval"

    async def __call__(self, cx: CallContext, proceed: Next) -> CallOutcome:
        asks = cx.tool is not None and cx.tool.asks_human
        if cx.decision is None or (cx.decision.verdict is not Verdict.REVIEW and not asks):
            return await proceed(cx)
        record = cx.scope.recorded_call(cx.key)
        digest = call_hash(cx.call.name, cx.call.arguments, cx.scope.agent_version)
        if record is None or not record.approval_id:
            return self._request(cx, digest)
        view = await cx.scope.approval(record.approval_id)
        if view is None:
            return cx.stop(
                self.name,
                deny("approval.missing", f"approval {record.approval_id} is not on record"),
            )
        if view.call_hash != digest:
            return cx.stop(
                self.name, deny("approval.mismatch", "the approval is bound to a different call")
            )
        if view.status == "pending":
            if view.expires_at <= time.time():
                await cx.scope.expire_approval(view.id)
                return cx.stop(
                    self.name,
                    deny("approval.expired", f"approval {view.id} expired before a decision"),
                )
            return self._waiting(cx, view.id)
        if view.status == "rejected":
            if asks:
                why = f"the person declined to answer: {view.comment or '(no comment)'}"
            else:
                why = f"rejected by {view.decided_by}" + (
                    f": {view.comment}" if view.comment else ""
                )
            return cx.stop(self.name, deny("approval.rejected", why))
        if view.status != "approved":
            return cx.stop(
                self.name, deny(f"approval.{view.status}", f"approval {view.id} is {view.status}")
            )
        if view.used and not record.approval_used:
            return cx.stop(self.name, deny("approval.used", f"approval {view.id} was already used"))
        if asks:
            return self._answered(cx, view, record.approval_used)
        if view.decided_arguments is not None:
            edited = self._apply_edit(cx, view.decided_arguments)
            if edited is not None:
                return edited
        if not record.approval_used:
            released = call_hash(cx.call.name, cx.call.arguments, cx.scope.agent_version)
            cx.scope.emit(ApprovalUsed(view.id, cx.key, released))
        cx.decided(
            self.name,
            allow("approval.granted", f"approved by {view.decided_by}", f"approval.{view.id}"),
        )
        return await proceed(cx)

    def _request(self, cx: CallContext, digest: str) -> CallOutcome:
        approval_id = "apr_" + uuid.uuid4().hex[:20]
        ttl = cx.policy.spec.approvals.expires_after_seconds
        if cx.tool is not None and cx.tool.asks_human:
            reason = "the agent asks a person a question"
        elif cx.decision and cx.decision.reasons:
            reason = cx.decision.reasons[0].message
        else:
            reason = "review required"
        cx.scope.emit(
            ApprovalRequested(
                approval_id=approval_id,
                agent=cx.scope.agent,
                key=cx.key,
                tool=cx.call.name,
                arguments=cx.call.arguments,
                call_hash=digest,
                expires_at=time.time() + ttl,
                reason=reason,
            )
        )
        return self._waiting(cx, approval_id)

    def _answered(self, cx: CallContext, view: ApprovalView, used: bool) -> CallOutcome:
        """The person's comment is the answer: the call ends here as executed. Card
        numbers, SSNs and IBANs are masked as in a run's input: the model never sees them."""
        if not used:
            cx.scope.emit(ApprovalUsed(view.id, cx.key, view.call_hash))
        decision = allow(
            "approval.answered", f"answered by {view.decided_by}", f"approval.{view.id}"
        )
        cx.decided(self.name, decision)
        answer, _ = redact_text(view.comment, IDENTIFIERS)
        result = {"answer": answer}
        cx.scope.emit(ToolSucceeded(cx.key, cx.call.name, result, 0.0, 1))
        return CallOutcome(cx.call, cx.key, CallStatus.EXECUTED, decision, result=result)

    def _waiting(self, cx: CallContext, approval_id: str) -> CallOutcome:
        assert cx.decision is not None
        return CallOutcome(
            cx.call,
            cx.key,
            CallStatus.WAITING,
            cx.decision,
            error_code="approval.pending",
            error=f"waiting for a person to decide approval {approval_id}",
            approval_id=approval_id,
        )

    def _apply_edit(self, cx: CallContext, arguments: dict[str, Any]) -> CallOutcome | None:
        """Swap in edited arguments; deny if they no longer fit schema or policy."""
        cx.call = ToolCall(cx.call.id, cx.call.name, arguments)
        if cx.tool is not None:
            problem = cx.tool.validate_arguments(arguments)
            if problem is not None:
                return cx.stop(
                    self.name, deny("args.invalid", f"edited arguments do not fit: {problem}")
                )
        decision = cx.policy.evaluate(
            cx.call, PolicyContext(sources=dict.fromkeys(arguments, "human"))
        )
        if decision.verdict is Verdict.DENY:
            return cx.stop(self.name, decision)
        return None
