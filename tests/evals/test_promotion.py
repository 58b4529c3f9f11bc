"""Labels and the promotion gate: a label moves to a version only on a passing evaluation
of that exact version on its declared suite; admins override with a reason; every move
is audited; rollback returns to the previous version; canaries split by run id."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from steward.core.errors import InvalidInput, NotFoundError, PermissionDenied
from steward.evals.promotion import Actor, PromotionRefused, canary, promote, rollback
from steward.spec.loader import load_spec_text
from steward.store import Database
from steward.store.chain import verify_chain
from steward.store.evaluations import record_eval
from steward.store.labels import CANARY, canary_arm, get_label, label_moves
from steward.store.runs import save_agent_version
from steward.store.schema import events

SPEC = "name: desk\nmodel: rules\nrules: {}\nrequired_suite: desk-suite\ndescription: version {n}\n"
ADMIN = Actor("admin:ops", admin=True)
OTHER = Actor("reviewer:kim", admin=False)


def version(db: Database, n: int, text: str = SPEC) -> str:
    loaded = load_spec_text(text.replace("{n}", str(n)), "desk.yaml")
    save_agent_version(db, "desk", loaded.version, loaded.text)
    return loaded.version


def evaluated(db: Database, v: str, passed: bool, suite: str = "desk-suite") -> str:
    return record_eval(db, agent="desk", version=v, suite=suite, passed=passed,
                       required_passed=3 if passed else 2, required_total=3, scored_rate=None,
                       summary="{}", by="ci").id  # fmt: skip


def test_promotion_needs_a_passing_evaluation_of_that_exact_version(any_db: Database) -> None:
    v1, v2 = version(any_db, 1), version(any_db, 2)
    with pytest.raises(NotFoundError):
        promote(any_db, "desk", "0000000000000000", label="production", actor=ADMIN)
    with pytest.raises(PromotionRefused, match="no evaluation on suite desk-suite"):
        promote(any_db, "desk", v1, label="production", actor=ADMIN)
    evaluated(any_db, v2, True)  # another version's pass proves nothing about v1
    evaluated(any_db, v1, True, suite="other-suite")  # nor does another suite
    with pytest.raises(PromotionRefused):
        promote(any_db, "desk", v1, label="production", actor=ADMIN)
    evaluated(any_db, v1, False)
    with pytest.raises(PromotionRefused, match="2/3 required cases passed"):
        promote(any_db, "desk", v1, label="production", actor=ADMIN)
    assert get_label(any_db, "desk", "production") is None
    passing = evaluated(any_db, v1, True)
    moved = promote(any_db, "desk", v1, label="production", actor=ADMIN)
    assert (moved.action, moved.suite, moved.eval_result, moved.by) == (
        "promote",
        "desk-suite",
        passing,
        "admin:ops",
    )
    label = get_label(any_db, "desk", "production")
    assert label is not None and label.version == v1
    with any_db.reader.connect() as connection:
        stored = (
            connection.execute(select(events.c.data).where(events.c.type == "agent.label_moved"))
            .scalars()
            .all()
        )
        assert verify_chain(connection).ok
    assert [json.loads(s)["eval_result"] for s in stored] == [passing]


def test_a_later_failing_evaluation_withdraws_the_pass(sqlite_db: Database) -> None:
    v1 = version(sqlite_db, 1)
    evaluated(sqlite_db, v1, True)
    evaluated(sqlite_db, v1, False)
    with pytest.raises(PromotionRefused, match="failed"):
        promote(sqlite_db, "desk", v1, label="staging", actor=ADMIN)


def test_a_spec_without_a_required_suite_is_refused(sqlite_db: Database) -> None:
    v = version(sqlite_db, 1, SPEC.replace("required_suite: desk-suite\n", ""))
    with pytest.raises(PromotionRefused, match="declares no required_suite"):
        promote(sqlite_db, "desk", v, label="production", actor=ADMIN)


def test_only_an_admin_overrides_and_only_with_a_reason(sqlite_db: Database) -> None:
    v1 = version(sqlite_db, 1)
    with pytest.raises(PermissionDenied):
        promote(sqlite_db, "desk", v1, label="production", actor=OTHER, override_reason="urgent")
    with pytest.raises(InvalidInput, match="reason"):
        promote(sqlite_db, "desk", v1, label="production", actor=ADMIN, override_reason="  ")
    moved = promote(sqlite_db, "desk", v1, label="production", actor=ADMIN,
                    override_reason="hotfix for incident 42")  # fmt: skip
    assert (moved.action, moved.reason) == ("override", "hotfix for incident 42")
    assert label_moves(sqlite_db, "desk")[0].reason == "hotfix for incident 42"


def test_rollback_moves_the_label_back_one_promotion_at_a_time(sqlite_db: Database) -> None:
    v1, v2, v3 = (version(sqlite_db, n) for n in (1, 2, 3))
    for v in (v1, v2, v3):
        evaluated(sqlite_db, v, True)
        promote(sqlite_db, "desk", v, label="production", actor=ADMIN)
    assert rollback(sqlite_db, "desk", label="production", actor=OTHER).version == v2
    back = rollback(sqlite_db, "desk", label="production", actor=OTHER, reason="latency")
    assert (back.version, back.previous, back.action) == (v1, v2, "rollback")
    with pytest.raises(PromotionRefused, match="no previous version"):
        rollback(sqlite_db, "desk", label="production", actor=OTHER)
    with pytest.raises(NotFoundError):
        rollback(sqlite_db, "desk", label="staging", actor=OTHER)


def test_canary_arm_is_deterministic_and_splits_by_share() -> None:
    ids = [f"run_{i:06d}" for i in range(20_000)]
    arms = [canary_arm(i, 10) for i in ids]
    assert arms == [canary_arm(i, 10) for i in ids]
    share = arms.count(CANARY) / len(ids)
    assert 0.09 < share < 0.11
    assert {canary_arm(i, 0) for i in ids[:100]} == {"stable"}
    assert {canary_arm(i, 100) for i in ids[:100]} == {CANARY}


def test_a_canary_passes_the_gate_and_a_promotion_of_it_ends_it(sqlite_db: Database) -> None:
    v1, v2 = version(sqlite_db, 1), version(sqlite_db, 2)
    evaluated(sqlite_db, v1, True)
    promote(sqlite_db, "desk", v1, label="production", actor=ADMIN)
    with pytest.raises(PromotionRefused):
        canary(sqlite_db, "desk", v2, label="production", percent=10, actor=ADMIN)
    evaluated(sqlite_db, v2, True)
    canary(sqlite_db, "desk", v2, label="production", percent=10, actor=ADMIN)
    label = get_label(sqlite_db, "desk", "production")
    assert label is not None and (label.version, label.canary_version, label.canary_percent) == (
        v1,
        v2,
        10,
    )
    promote(sqlite_db, "desk", v2, label="production", actor=ADMIN)
    label = get_label(sqlite_db, "desk", "production")
    assert label is not None and (label.version, label.canary_version, label.canary_percent) == (
        v2,
        None,
        0,
    )
