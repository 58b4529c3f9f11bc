"""Built-in tools an agent enables by listing them in its spec's `tools`.

`ask_human` lets the model ask the person a question. It is never executed: the gate
parks it as an approval request (tool `ask_human`, arguments `{"question": ...}`) and the
run waits; the person answers by approving with a comment, and the comment comes back
to the model as the call's result, `{"answer": ...}`. A rejection comes back as an error
("the person declined to answer: ..."); a question nobody answers in time expires.
"""

from __future__ import annotations

from typing import Any

from steward.tools.base import Effect, Tool, compile_validator

ASK_HUMAN = "ask_human"
MAX_QUESTION_CHARS = 2000

ASK_HUMAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_QUESTION_CHARS,
            "description": "The question for the person, complete enough to answer alone.",
        }
    },
    "required": ["question"],
    "additionalProperties": False,
}


def _never_executed(question: str) -> Any:
    raise RuntimeError("ask_human is answered by a person through an approval; it never runs")


ask_human = Tool(
    name=ASK_HUMAN,
    description=(
        "Ask the person you work for a question when you cannot go on without their "
        "answer (a missing detail, a choice only they can make). The run pauses until "
        "they answer; the result is {'answer': '...'}."
    ),
    parameters=ASK_HUMAN_SCHEMA,
    function=_never_executed,
    effect=Effect.READ,
    validator=compile_validator(ASK_HUMAN_SCHEMA),
    asks_human=True,
)

BUILTINS: dict[str, Tool] = {ask_human.name: ask_human}
