"""Which version of an agent a new run executes: the one its label points at.

A server loads agents from spec files; when the store has a label for the agent (by
default `production`), a run executes the version the label points at, built from the
stored spec (and prompt file) when it is not the file loaded. A label with a canary sends
`canary_percent`% of runs to its canary version; the arm is chosen from a hash of the
run id (store/labels.py canary_arm), so the same run always falls in the same arm. The
label and arm go on the run's record (RunStarted), so metrics and monitors compare the
versions. Without a label the loaded file runs, as before labels existed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from steward.core.errors import NotFoundError
from steward.engines.catalog import stored_spec
from steward.runtime.agent import AgentRuntime, build_agent
from steward.store.database import Database
from steward.store.labels import CANARY, canary_arm, get_label


@dataclass(frozen=True, slots=True)
class Choice:
    agent: AgentRuntime
    label: str = ""
    arm: str = ""


class LabelledAgents:
    """Resolves (agent, label, run id) to the agent version to run; builds each stored
    version once per process."""

    def __init__(self, db: Database, default_label: str = "production") -> None:
        self.db = db
        self.default_label = default_label
        self._built: dict[tuple[str, str], AgentRuntime] = {}
        self._lock = threading.Lock()

    def version(self, loaded: AgentRuntime, version: str) -> AgentRuntime:
        if version == loaded.version:
            return loaded
        key = (loaded.name, version)
        with self._lock:
            found = self._built.get(key)
        if found is None:
            found = build_agent(stored_spec(self.db, loaded.name, version), db=self.db)
            with self._lock:
                found = self._built.setdefault(key, found)
        return found

    def choose(self, loaded: AgentRuntime, run_id: str, label: str | None = None) -> Choice:
        """`label` None: the default label when the agent has it, else the loaded file. A
        label named explicitly must exist (NotFoundError)."""
        name = label or self.default_label
        pointed = labelled_version(self.db, loaded.name, name, run_id)
        if pointed is None:
            if label is not None:
                raise NotFoundError(f"agent {loaded.name} has no label {label!r}")
            return Choice(loaded)
        version, arm = pointed
        return Choice(self.version(loaded, version), name, arm)


def labelled_version(db: Database, agent: str, label: str, run_id: str) -> tuple[str, str] | None:
    """(version, canary arm) that `label` points the run at; None when the agent has no
    such label."""
    row = get_label(db, agent, label)
    if row is None:
        return None
    arm = canary_arm(run_id, row.canary_percent) if row.canary_version else ""
    return (row.canary_version if arm == CANARY and row.canary_version else row.version), arm
