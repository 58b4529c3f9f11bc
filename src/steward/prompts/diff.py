"""The difference between two stored versions of an agent: a unified diff of the spec
text and of the prompt file each version was saved with."""

from __future__ import annotations

import difflib

from steward.store.database import Database
from steward.store.runs import AgentVersion, get_agent_version


def _lines(text: str | None) -> list[str]:
    return [] if not text else text.splitlines(keepends=True)


def diff_texts(old: AgentVersion, new: AgentVersion) -> str:
    parts: list[str] = []
    parts += difflib.unified_diff(
        _lines(old.spec_text),
        _lines(new.spec_text),
        f"{old.agent}@{old.version}/spec",
        f"{new.agent}@{new.version}/spec",
    )
    if old.prompt_text or new.prompt_text:
        parts += difflib.unified_diff(
            _lines(old.prompt_text),
            _lines(new.prompt_text),
            f"{old.agent}@{old.version}/{old.prompt_path or 'prompt'}",
            f"{new.agent}@{new.version}/{new.prompt_path or 'prompt'}",
        )
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts)


def version_diff(db: Database, agent: str, old: str, new: str) -> str:
    """Unified diff from version `old` to `new` (NotFoundError for an unknown version);
    empty when they are the same text."""
    return diff_texts(get_agent_version(db, agent, old), get_agent_version(db, agent, new))
