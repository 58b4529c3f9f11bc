"""A toolset for the temporal engine's tests: one unkeyed write (it appends a line to
the file at $STEWARD_TEST_NOTES), so a retry could repeat it and nothing may retry it."""

from __future__ import annotations

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

    return [append_note]


NOTES_SPEC = """
name: notes-desk
model: rules
tools: [append_note]
toolsets:
  - engines.unkeyed_tools:note_tools
decision_authority:
  autonomous: [append_note]
rules:
  intents:
    - name: note
      match: ['(?i)note']
      plan:
        - [{tool: append_note, args: {text: hello}}]
      answer: Noted.
      confidence: 0.95
"""
