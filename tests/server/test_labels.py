"""Labels in the server: a run executes the version the label points at and records it
(label and canary arm on the run); promotion through the API is gated and audited; the
console shows labels, promotes, rolls back and diffs two versions."""

from __future__ import annotations

from collections import Counter

from steward.cli.serve import DEMO_SPEC
from steward.spec.loader import load_spec_text
from steward.store.evaluations import record_eval
from steward.store.runs import save_agent_version

from .served import Served
from .test_console import get, post, sign_in

OUT_OF_SCOPE = "Can you write me a short poem about cats?"
CANDIDATE_ANSWER = "Candidate build, I only help with orders and accounts."


def candidate(served: Served, passed: bool = True) -> str:
    """A new version of the demo agent on record (a different fallback answer), with an
    evaluation on the suite it declares."""
    text = DEMO_SPEC.read_text().replace(
        "I can only help with orders, refunds, accounts and our policies; I've passed your "
        "message to a colleague.",
        CANDIDATE_ANSWER,
    )
    assert "required_suite: support-desk" in text and CANDIDATE_ANSWER in text
    loaded = load_spec_text(text, "candidate.yaml")
    save_agent_version(served.db, "support-desk", loaded.version, loaded.text)
    record_eval(served.db, agent="support-desk", version=loaded.version, suite="support-desk",
                passed=passed, required_passed=1, required_total=1, scored_rate=None,
                summary="{}", by="ci")  # fmt: skip
    return loaded.version


def loaded_version(served: Served) -> str:
    return str(served.as_("admin", "GET", "/v1/agents/support-desk").json()["loaded_version"])


def test_without_a_label_the_loaded_spec_runs(served: Served) -> None:
    run = served.wait_for(served.start(OUT_OF_SCOPE)["id"], "escalated")
    assert (run["agent_version"], run["label"], run["arm"]) == (loaded_version(served), "", "")


def test_a_promoted_version_serves_new_runs_and_rollback_restores(served_any: Served) -> None:
    served = served_any  # SQLite, then PostgreSQL (the runs table's label column)
    new = candidate(served)
    refused = served.as_(
        "reviewer", "POST", "/v1/agents/support-desk/promote", json={"version": new}
    )
    assert refused.status_code == 403
    moved = served.as_("admin", "POST", "/v1/agents/support-desk/promote", json={"version": new})
    assert moved.status_code == 200, moved.text
    assert moved.json()["suite"] == "support-desk" and moved.json()["eval_result"].startswith("ev_")
    run = served.wait_for(served.start(OUT_OF_SCOPE)["id"], "escalated")
    assert (run["agent_version"], run["label"], run["output"]) == (
        new,
        "production",
        CANDIDATE_ANSWER,
    )
    # the loaded file's version, promoted by an admin's override, then rolled back from
    old = loaded_version(served)
    body = {"version": old, "override": True, "reason": "the file on disk"}
    assert (
        served.as_("admin", "POST", "/v1/agents/support-desk/promote", json=body).status_code == 200
    )
    back = served.as_("admin", "POST", "/v1/agents/support-desk/rollback", json={"reason": "oops"})
    assert back.status_code == 200 and back.json()["version"] == new
    history = served.as_("viewer", "GET", "/v1/agents/support-desk/labels/history").json()
    assert [m["action"] for m in history] == ["promote", "override", "rollback"]


def test_an_unevaluated_version_is_refused_with_409(served: Served) -> None:
    new = candidate(served, passed=False)
    response = served.as_("admin", "POST", "/v1/agents/support-desk/promote", json={"version": new})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "promotion.refused"
    missing = served.as_("admin", "POST", "/v1/agents/support-desk/promote", json={})
    assert missing.status_code == 422 and "version" in missing.text
    unknown = served.as_(
        "admin", "POST", "/v1/runs", json={"agent": "support-desk", "input": "hi", "label": "nope"}
    )
    assert unknown.status_code == 404


def test_a_canary_splits_runs_by_run_id_and_records_the_arm(served: Served) -> None:
    new = candidate(served)
    old = loaded_version(served)
    body = {"version": old, "override": True, "reason": "baseline"}
    promoted = served.as_("admin", "POST", "/v1/agents/support-desk/promote", json=body)
    assert promoted.status_code == 200
    split = served.as_(
        "admin", "POST", "/v1/agents/support-desk/canary", json={"version": new, "percent": 50}
    )
    assert split.status_code == 200, split.text
    runs = [served.wait_for(served.start(OUT_OF_SCOPE)["id"], "escalated") for _ in range(16)]
    seen = Counter((r["arm"], r["agent_version"]) for r in runs)
    assert set(seen) <= {("stable", old), ("canary", new)} and len(seen) == 2, seen
    for r in runs:
        assert (r["output"] == CANDIDATE_ANSWER) is (r["arm"] == "canary")


def test_the_console_shows_labels_promotes_rolls_back_and_diffs(served: Served) -> None:
    new = candidate(served)
    old = loaded_version(served)
    served.start(OUT_OF_SCOPE)  # the loaded version goes on record with its first run
    sign_in(served, "admin")
    assert post(served, "/console/agents/support-desk/promote", {"version": new}).status_code == 303
    page = get(served, "/console/agents")
    assert 'id="label-support-desk-production"' in page and new in page and "Roll back" in page
    diff = get(served, f"/console/agents/support-desk/diff?old={old}&new={new}")
    assert "diff-add" in diff and "diff-del" in diff and CANDIDATE_ANSWER in diff
    assert post(served, "/console/agents/support-desk/rollback", {"reason": "x"}).status_code == 303


def test_labels_evaluations_and_the_diff_are_readable(served: Served) -> None:
    new = candidate(served)
    old = loaded_version(served)
    assert (
        served.as_(
            "admin", "POST", "/v1/agents/support-desk/promote", json={"version": new}
        ).status_code
        == 200
    )
    labels = served.as_("viewer", "GET", "/v1/agents/support-desk/labels").json()
    assert [(x["label"], x["version"], x["canary_version"]) for x in labels] == [
        ("production", new, None)
    ]
    evals = served.as_("viewer", "GET", "/v1/agents/support-desk/evals").json()
    assert [(e["version"], e["suite"], e["passed"]) for e in evals] == [(new, "support-desk", True)]
    diff = served.as_("viewer", "GET", f"/v1/agents/support-desk/diff?old={old}&new={new}").json()
    assert f"+    answer: {CANDIDATE_ANSWER}" in diff["diff"].splitlines()
    missing = served.as_("viewer", "GET", f"/v1/agents/support-desk/diff?old=nope&new={new}")
    assert missing.status_code == 404
    other = served.as_("other-agent", "GET", "/v1/agents/support-desk/labels")
    assert other.status_code == 403  # an agent key reads only its own agent
