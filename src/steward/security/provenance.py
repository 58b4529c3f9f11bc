"""Where a proposed argument came from (DESIGN principle 10).

Works for any model, without its cooperation: an argument value is traced to the
conversation text it appears in. The user's words outrank configuration, which outranks
tool results; a value found nowhere was made up by the model. A policy can then ask,
say, `sources.to == "user"`: send only to a recipient the user named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from steward.core.messages import Message, Source
from steward.tools.builtin import ASK_HUMAN

_ROLE_SOURCE = {"user": Source.USER, "system": Source.CONFIG, "tool": Source.TOOL}
# A person's answer to the agent's question (the ask_human tool) is the person's word,
# not a tool's data: it ranks right after the user's own request.
_RANK = (Source.USER, Source.HUMAN, Source.CONFIG, Source.TOOL)


def _needles(value: Any) -> Iterable[str]:
    if isinstance(value, bool) or value is None:
        return ()
    if isinstance(value, int | float):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return (text,)
    if isinstance(value, str):
        return (value,) if len(value.strip()) >= 2 else ()
    if isinstance(value, dict):
        return [n for v in value.values() for n in _needles(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _needles(v)]
    return ()


def trace_sources(arguments: dict[str, Any], messages: Iterable[Message]) -> dict[str, Source]:
    texts: dict[Source, list[str]] = {}
    for message in messages:
        source = _ROLE_SOURCE.get(message.role)
        if message.role == "tool" and message.name == ASK_HUMAN:
            source = Source.HUMAN
        if source is not None:
            texts.setdefault(source, []).append(message.content.lower())
    found: dict[str, Source] = {}
    for name, value in arguments.items():
        needles = [n.lower() for n in _needles(value)]
        found[name] = Source.MODEL
        if not needles:
            continue
        for source in _RANK:
            haystacks = texts.get(source, ())
            if all(any(n in h for h in haystacks) for n in needles):
                found[name] = source
                break
    return found
