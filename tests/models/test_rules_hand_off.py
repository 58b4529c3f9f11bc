"""The `rules` model's `hand_off`: instead of an answer below `hand_off.below` it proposes
one call (e.g. `handoff.escalation`) carrying the answer it would have given; once per
conversation; answers at or above the threshold, and plans, are untouched."""

from __future__ import annotations

import json
from typing import Any

from steward.core.messages import Message, ModelResponse
from steward.models.rules import RulesModel
from steward.spec.models import RulesConfig

CONFIG: dict[str, Any] = {
    "intents": [
        {
            "name": "refund",
            "match": ["(?i)refund"],
            "extract": {"order": "#(\\d+)"},
            "require": ["order"],
            "on_missing": "Which order?",
            "plan": [[{"tool": "issue_refund", "args": {"order": "{order}"}}]],
            "answer": "Refunded {results.issue_refund.order}.",
            "confidence": 0.9,
            "on_denied": "I can't refund that ({denial.message}).",
            "on_denied_confidence": 0.3,
        },
        {
            "name": "card",
            "match": ["(?i)card"],
            "plan": [[{"tool": "get_card", "args": {}}]],
            "answer": "Your card is {results.get_card.brand}.",
            "on_denied": "That is on your account page.",
            "on_denied_confidence": 0.8,
        },
    ],
    "fallback": {"answer": "Not my kind of question.", "confidence": 0.2},
    "hand_off": {
        "below": 0.6,
        "call": {
            "tool": "handoff.escalation",
            "args": {"message": "Unresolved: {answer}", "code": "{denial.code}"},
        },
    },
}


def _model(**changes: Any) -> RulesModel:
    return RulesModel(RulesConfig.model_validate({**CONFIG, **changes}))


def _turn(response: ModelResponse, outcome: dict[str, Any]) -> list[Message]:
    """The assistant turn that proposed `response`'s one call, and the call's outcome."""
    (call,) = response.tool_calls
    return [
        Message("assistant", "", response.tool_calls),
        Message("tool", json.dumps(outcome), tool_call_id=call.id, name=call.name),
    ]


def test_an_answer_below_the_threshold_becomes_the_hand_off_call() -> None:
    model = _model()
    asked = (Message("user", "what is the weather"),)
    response = model.decide(asked)
    (call,) = response.tool_calls
    assert call.name == "handoff.escalation"
    # a placeholder that is the whole value and reads nothing gives None (render keeps types)
    assert call.arguments == {"message": "Unresolved: Not my kind of question.", "code": None}
    # the call was made (here a handoff was denied): the answer it would have given, once
    denied = {"ok": False, "error": {"code": "tool.forbidden", "message": "no"}}
    after = model.decide((*asked, *_turn(response, denied)))
    assert (after.text, after.confidence, after.tool_calls) == (
        "Not my kind of question.", 0.2, ()
    )  # fmt: skip


def test_a_denial_it_can_only_apologise_for_is_handed_off_with_the_denial() -> None:
    model = _model()
    asked = (Message("user", "refund #42"),)
    planned = model.decide(asked)
    assert [c.name for c in planned.tool_calls] == ["issue_refund"]  # plans are untouched
    denial = {"ok": False, "error": {"code": "condition.too_big", "message": "over $500"}}
    handed = model.decide((*asked, *_turn(planned, denial)))
    (call,) = handed.tool_calls
    assert call.arguments == {
        "message": "Unresolved: I can't refund that (over $500).",
        "code": "condition.too_big",
    }
    missing = model.decide((Message("user", "refund please"),))
    assert missing.tool_calls[0].arguments["message"] == "Unresolved: Which order?"


def test_answers_at_or_above_the_threshold_are_given() -> None:
    model = _model()
    asked = (Message("user", "which card"),)
    planned = model.decide(asked)
    denial = {"ok": False, "error": {"code": "data_access.financial", "message": "no"}}
    answer = model.decide((*asked, *_turn(planned, denial)))
    assert (answer.text, answer.confidence, answer.tool_calls) == (
        "That is on your account page.", 0.8, ()
    )  # fmt: skip
    asked = (Message("user", "refund #42"),)
    planned = model.decide(asked)
    done = model.decide((*asked, *_turn(planned, {"ok": True, "result": {"order": "42"}})))
    assert (done.text, done.confidence) == ("Refunded 42.", 0.9)


def test_without_hand_off_a_low_answer_is_given() -> None:
    model = _model(hand_off=None)
    response = model.decide((Message("user", "what is the weather"),))
    assert (response.text, response.confidence, response.tool_calls) == (
        "Not my kind of question.", 0.2, ()
    )  # fmt: skip
