"""A toolset for the temporal engine's tests: one unkeyed write (it appends a line to
the file at $STEWARD_TEST_NOTES), so a retry could repeat it and nothing may retry it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from steward.tools import Tool, tool


def note_tools() -> list[Tool]:
    @tool(effect="write")
    def append_note(text: str) -> dict[str, str]:
        """Append a note (not idempotent, takes no key)."""
        with Path(os.environ["STEWARD_TEST_NOTES"]).open("a", encoding="utf-8") as notes:
            notes.write(text + "\n")
        return {"noted": text}

    @tool(effect="read")
    async def slow_lookup(topic: str) -> dict[str, str]:
        """A read that takes a minute: a run is still executing while it is cancelled."""
        await asyncio.sleep(60)
        return {"topic": topic}

    return [append_note, slow_lookup]


NOTES_SPEC = """
name: notes-desk
model: rules
tools: [append_note, slow_lookup]
toolsets:
  - engines.unkeyed_tools:note_tools
decision_authority:
  autonomous: [append_note, slow_lookup]
rules:
  intents:
    - name: note
      match: ['(?i)note']
      plan:
        - [{tool: append_note, args: {text: hello}}]
      answer: Noted.
      confidence: 0.95
    - name: slow
      match: ['(?i)slow']
      plan:
        - [{tool: slow_lookup, args: {topic: tents}}]
      answer: Looked it up.
      confidence: 0.95
"""
