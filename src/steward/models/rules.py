"""The embedded `rules` model: a deterministic decision engine configured in the spec.

It stands where an LLM would: it reads the conversation, matches the user's text to an
intent by patterns, extracts arguments, proposes the intent's plan of tool calls one turn
at a time, and finally answers from a template with the intent's confidence. The answer
reads what the tools returned (`{results.tool.field}`), never the values the agent sent:
a reviewer may have edited the call, and the spec refuses an answer that would quote them. It has no
network and no weights, so the demo runs anywhere; and it is naive on purpose: text that
looks like an instruction is followed, which is exactly what the gate is for.

`hand_off` (optional): instead of an answer whose confidence is below `hand_off.below`
(no intent matched, a missing detail, a denial the intent can only apologise for, a
low-confidence intent), it proposes one call, `hand_off.call` (e.g. `handoff.escalation`:
a desk that cannot resolve a ticket passes it on), with the answer it would have given
as `{answer}`. It proposes it once per conversation: a `handoff.*` that runs ends the
run; after any other outcome of that call (a delegate's answer, a denial) it gives the
answer it would have given, as if the call had not been made.
"""

from __future__ import annotations

import json
import re
from typing import Any

from steward.core.messages import Message, ModelResponse, ToolCall
from steward.models.protocol import ModelRequest
from steward.spec.models import PLACEHOLDER as _PLACEHOLDER
from steward.spec.models import Intent, RulesConfig


def _lookup(context: dict[str, Any], path: str) -> Any:
    """`a.b.0.c` in nested dicts and lists. A key may itself hold dots (the tools
    `server.tool` and `delegate.agent`): the longest key that matches is taken."""
    value: Any = context
    parts = path.split(".")
    at = 0
    while at < len(parts):
        if isinstance(value, dict):
            ends = [n for n in range(len(parts), at, -1) if ".".join(parts[at:n]) in value]
            if not ends:
                return None
            value, at = value[".".join(parts[at : ends[0]])], ends[0]
        elif isinstance(value, list) and parts[at].isdigit() and int(parts[at]) < len(value):
            value, at = value[int(parts[at])], at + 1
        else:
            return None
    return value


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill `{name}` / `{results.tool.field}` placeholders. A string that is exactly one
    placeholder keeps the value's type (so an extracted number stays a number)."""
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return _lookup(context, whole.group(1))

    def fill(match: re.Match[str]) -> str:
        value = _lookup(context, match.group(1))
        if value is None:
            return "?"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def _convert(raw: str, kind: str) -> Any:
    if kind == "string":
        return raw
    cleaned = raw.replace(",", "")
    try:
        return int(cleaned) if kind == "integer" else float(cleaned)
    except ValueError:
        return None


class RulesModel:
    """Deterministic: the same conversation always gives the same response."""

    def __init__(self, config: RulesConfig, name: str = "rules") -> None:
        self.name = name
        self.config = config
        self._compiled = [
            (
                intent,
                [re.compile(p) for p in intent.match],
                [re.compile(p) for p in intent.unless],
                {k: (re.compile(e.pattern), e.type) for k, e in intent.extract.items()},
            )
            for intent in config.intents
        ]

    async def respond(self, request: ModelRequest) -> ModelResponse:
        return self.decide(request.messages)

    def decide(self, messages: tuple[Message, ...]) -> ModelResponse:
        hand_off = self.config.hand_off
        if hand_off is None:
            return self._decide(messages)[0]
        messages, handed = _without(messages, hand_off.call.tool)
        response, context = self._decide(messages)
        confidence = response.confidence
        if handed or response.tool_calls or confidence is None or confidence >= hand_off.below:
            return response
        args = render(hand_off.call.args, {**context, "answer": response.text})
        call = ToolCall("call_hand_off", hand_off.call.tool, args)
        return ModelResponse(self.name, tool_calls=(call,), finish_reason="tool_calls")

    def _decide(self, messages: tuple[Message, ...]) -> tuple[ModelResponse, dict[str, Any]]:
        """The response, and what its templates could read."""
        user_text = next((m.content for m in messages if m.role == "user"), "")
        matched = self._match(user_text)
        if matched is None:
            fallback = self.config.fallback
            answer = ModelResponse(self.name, text=fallback.answer, confidence=fallback.confidence)
            return answer, {}
        intent, values = matched
        missing = [name for name in intent.require if values.get(name) is None]
        if missing:
            text = intent.on_missing or f"Could you tell me your {', '.join(missing)}?"
            return ModelResponse(self.name, text=render(text, values), confidence=0.3), values
        results, denied = _tool_results(messages)
        context: dict[str, Any] = {**values, "results": results}
        if denied:
            text = intent.on_denied or "I can't do that myself; a colleague will follow up."
            context["denial"] = denied[0]
            said = render(text, context)
            return ModelResponse(
                self.name, text=said, confidence=intent.on_denied_confidence
            ), context
        turn = sum(1 for m in messages if m.role == "assistant" and m.tool_calls)
        if turn < len(intent.plan):
            calls = tuple(
                ToolCall(f"call_{turn}_{index}", planned.tool, render(planned.args, context))
                for index, planned in enumerate(intent.plan[turn])
            )
            return ModelResponse(self.name, tool_calls=calls, finish_reason="tool_calls"), context
        said = render(intent.answer, context)
        return ModelResponse(self.name, text=said, confidence=intent.confidence), context

    def _match(self, text: str) -> tuple[Intent, dict[str, Any]] | None:
        for intent, patterns, negatives, extractors in self._compiled:
            if not any(p.search(text) for p in patterns):
                continue
            if any(n.search(text) for n in negatives):
                continue
            values: dict[str, Any] = {}
            for name, (pattern, kind) in extractors.items():
                found = pattern.search(text)
                if found:
                    raw = found.group(1) if found.groups() else found.group(0)
                    values[name] = _convert(raw, kind)
            return intent, values
        return None


def _without(messages: tuple[Message, ...], tool: str) -> tuple[tuple[Message, ...], bool]:
    """The conversation without the hand-off call to `tool` and its outcome, and whether
    it was made."""
    kept = tuple(
        m
        for m in messages
        if not (m.role == "tool" and m.name == tool)
        and not (m.tool_calls and all(c.name == tool for c in m.tool_calls))
    )
    return kept, len(kept) != len(messages)


def _tool_results(messages: tuple[Message, ...]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Results by tool name, and the errors of calls that did not run."""
    results: dict[str, Any] = {}
    denied: list[dict[str, Any]] = []
    for message in messages:
        if message.role != "tool" or message.name is None:
            continue
        try:
            body = json.loads(message.content)
        except json.JSONDecodeError:
            continue
        if body.get("ok"):
            results[message.name] = body.get("result")
        else:
            error = body.get("error") or {}
            denied.append(
                {
                    "tool": message.name,
                    "code": error.get("code", ""),
                    "message": error.get("message", ""),
                }
            )
    return results, denied
