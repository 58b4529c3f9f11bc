"""The promotion gate: a label moves to a version only when that exact version's latest
evaluation on the suite its spec declares (`required_suite`) passed. An admin may move it
anyway with a reason (`override`), and every move is audited (store/labels.py).

Fail closed: a version steward has not stored, a spec that declares no required suite,
a version never evaluated on it, or whose latest evaluation failed, is refused with the
reason, naming the command that would fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from steward.core.errors import InvalidInput, NotFoundError, PermissionDenied, StewardError
from steward.core.events import LabelMoved
from steward.spec.loader import load_spec_text
from steward.store.chain import Published
from steward.store.database import Database
from steward.store.evaluations import latest_eval
from steward.store.labels import get_label, label_moves, move_label, rollback_target
from steward.store.runs import get_agent_version


class PromotionRefused(StewardError):
    code = "promotion.refused"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who moves a label: their label (as recorded) and whether they are an admin."""

    name: str
    admin: bool


def required_suite(db: Database, agent: str, version: str) -> str | None:
    stored = get_agent_version(db, agent, version)
    loaded = load_spec_text(stored.spec_text, f"{agent}@{version}", prompt_text=stored.prompt_text)
    return loaded.spec.required_suite


def _gate(db: Database, agent: str, version: str) -> tuple[str, str]:
    """(suite, eval result id) of the passing evaluation, or PromotionRefused."""
    suite = required_suite(db, agent, version)
    if suite is None:
        raise PromotionRefused(
            f"{agent}@{version} declares no required_suite in its spec: nothing can show it "
            "passes; declare one, or an admin overrides with --reason"
        )
    found = latest_eval(db, agent, version, suite)
    if found is None:
        raise PromotionRefused(
            f"{agent}@{version} has no evaluation on suite {suite}: run "
            f"steward eval run SUITE --agent SPEC first"
        )
    if not found.passed:
        raise PromotionRefused(
            f"{agent}@{version}'s latest evaluation on suite {suite} ({found.id}) failed: "
            f"{found.required_passed}/{found.required_total} required cases passed"
        )
    return suite, found.id


def _known(db: Database, agent: str, version: str) -> None:
    try:
        get_agent_version(db, agent, version)
    except NotFoundError:
        raise NotFoundError(
            f"{agent}@{version} is not on record: a version is recorded when it is evaluated "
            "(steward eval run SUITE --agent SPEC) or runs"
        ) from None


def _override(actor: Actor, reason: str | None) -> str:
    if not actor.admin:
        raise PermissionDenied("only an admin may override the evaluation gate")
    if not reason or not reason.strip():
        raise InvalidInput("reason: an override needs a reason, recorded in the audit trail")
    return reason.strip()


def promote(
    db: Database,
    agent: str,
    version: str,
    *,
    label: str,
    actor: Actor,
    override_reason: str | None = None,
    on_commit: Published | None = None,
) -> LabelMoved:
    """Point `label` at `version`, through the evaluation gate (or an admin's override)."""
    _known(db, agent, version)
    if override_reason is None:
        suite, result = _gate(db, agent, version)
        return move_label(
            db,
            agent,
            label,
            version,
            action="promote",
            by=actor.name,
            suite=suite,
            eval_result=result,
            on_commit=on_commit,
        )
    reason = _override(actor, override_reason)
    suite = required_suite(db, agent, version) or ""
    found = latest_eval(db, agent, version, suite) if suite else None
    return move_label(
        db,
        agent,
        label,
        version,
        action="override",
        by=actor.name,
        reason=reason,
        suite=suite,
        eval_result=found.id if found else None,
        on_commit=on_commit,
    )


def rollback(
    db: Database,
    agent: str,
    *,
    label: str,
    actor: Actor,
    reason: str = "",
    on_commit: Published | None = None,
) -> LabelMoved:
    """Move `label` back to the version it pointed at before its current one. A rollback
    needs no evaluation: that version was promoted before."""
    current = get_label(db, agent, label)
    if current is None:
        raise NotFoundError(f"{agent} has no label {label}")
    target = rollback_target(label_moves(db, agent, label))
    if target is None:
        raise PromotionRefused(f"label {label} of {agent} has no previous version to roll back to")
    return move_label(
        db,
        agent,
        label,
        target,
        action="rollback",
        by=actor.name,
        reason=reason,
        expect_version=current.version,
        on_commit=on_commit,
    )


def canary(
    db: Database,
    agent: str,
    version: str,
    *,
    label: str,
    percent: int,
    actor: Actor,
    override_reason: str | None = None,
    on_commit: Published | None = None,
) -> LabelMoved:
    """Send `percent`% of the label's runs to `version` (0 ends the canary). A canary
    serves real traffic, so its version passes the same gate as a promotion."""
    if not 0 <= percent <= 100:
        raise InvalidInput("percent: a share of runs from 0 to 100")
    suite, result, reason = "", None, ""
    if percent > 0:
        _known(db, agent, version)
        if override_reason is None:
            suite, result = _gate(db, agent, version)
        else:
            reason = _override(actor, override_reason)
    return move_label(
        db,
        agent,
        label,
        version,
        action="canary",
        by=actor.name,
        reason=reason,
        suite=suite,
        eval_result=result,
        canary=(version, percent),
        on_commit=on_commit,
    )
