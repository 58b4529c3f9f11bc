"""Candidate cases from production (`steward eval capture`).

Two sources: every finished run whose latest feedback is `incorrect` (its correction is
the expected answer), and a deterministic sample of finished runs (a run is in the
sample when the first 32 bits of SHA-256(run id) / 2³² fall below the share asked for, so
capturing twice picks the same runs). Each candidate records what the run did (its
status, the tools it called, the gate's denials) and the results its tools returned, as
the case's fixtures: the file is a suite with `systems: fixtures`, replayable without
touching any system. Every case is scored (`required: false`) and marked for review: a
person decides what becomes a suite's case and what it must hold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import select

from steward.core import events as ev
from steward.core.events import decode_event
from steward.evals.checks import observe
from steward.store.database import Database
from steward.store.runs import RunRow, list_runs, read_journal
from steward.store.schema import events

FINISHED = {"succeeded", "escalated", "failed"}


@dataclass(slots=True)
class Candidate:
    source: str  # feedback | sample
    run_id: str
    input: str
    output: str
    status: str
    version: str
    correction: str = ""
    called: list[str] = field(default_factory=list)
    denied: list[dict[str, str]] = field(default_factory=list)
    fixtures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "run_id": self.run_id,
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "version": self.version,
            "correction": self.correction,
            "called": self.called,
            "denied": self.denied,
            "fixtures": self.fixtures,
        }


def in_sample(run_id: str, share: float) -> bool:
    bucket = int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:4], "big")
    return bucket / 2**32 < share


def _corrections(db: Database, run_ids: list[str]) -> dict[str, ev.FeedbackGiven]:
    """The latest feedback per run."""
    latest: dict[str, ev.FeedbackGiven] = {}
    if not run_ids:
        return latest
    query = (
        select(events.c.run_id, events.c.data)
        .where(events.c.type == "run.feedback", events.c.run_id.in_(run_ids))
        .order_by(events.c.id)
    )
    with db.reader.connect() as connection:
        for run_id, data in connection.execute(query):
            event = decode_event(data)
            if isinstance(event, ev.FeedbackGiven):
                latest[run_id] = event
    return latest


def _candidate(db: Database, row: RunRow, source: str, correction: str) -> Candidate:
    entries = read_journal(db, row.id)
    seen = observe(
        entries,
        status=row.status,
        output=row.output,
        confidence=row.confidence,
        reason_code=row.reason_code,
        seconds=row.latency_s or 0.0,
    )
    fixtures: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry.event, ev.ToolSucceeded):
            fixtures.setdefault(entry.event.tool, entry.event.result)
    denied = [
        {"tool": d.tool, "verdict": d.verdict, "rule": d.rules[0] if d.rules else ""}
        for d in seen.decisions
        if d.verdict == "deny"
    ]
    return Candidate(
        source,
        row.id,
        row.input,
        row.output,
        row.status,
        row.agent_version,
        correction,
        list(dict.fromkeys(t for t, _ in seen.called)),
        denied,
        fixtures,
    )


def capture_candidates(
    db: Database, agent: str, *, sample: float = 0.0, limit: int = 500
) -> list[Candidate]:
    rows = [r for r in list_runs(db, agent=agent, limit=limit) if r.status in FINISHED]
    feedback = _corrections(db, [r.id for r in rows])
    found: list[Candidate] = []
    for row in rows:
        given = feedback.get(row.id)
        if given is not None and given.verdict == "incorrect":
            found.append(_candidate(db, row, "feedback", given.correction))
        elif sample > 0 and in_sample(row.id, sample):
            found.append(_candidate(db, row, "sample", ""))
    return found


def _case(candidate: Candidate) -> dict[str, Any]:
    expect: dict[str, Any] = {"status": candidate.status}
    if candidate.called:
        expect["calls"] = candidate.called
    if candidate.denied:
        expect["decisions"] = [
            {
                "tool": d["tool"],
                "verdict": d["verdict"],
                **({"rule": d["rule"]} if d["rule"] else {}),
            }
            for d in candidate.denied
        ]
    if candidate.correction:
        expect["answer"] = {"equals": candidate.correction}
    case: dict[str, Any] = {
        "id": f"{candidate.source}-{candidate.run_id}",
        "input": candidate.input,
        "tags": [candidate.source, "captured", "review"],
        "required": False,
    }
    if candidate.fixtures:
        case["fixtures"] = candidate.fixtures
    case["expect"] = expect
    return case


def render_candidates(agent: str, candidates: list[Candidate]) -> str:
    """A suite file of candidate cases, with a note per case of what the run answered."""
    lines = [
        f"# Candidate cases captured from {agent}'s production runs (steward eval capture).",
        "# REVIEW EACH CASE before it joins a suite: keep, edit or delete it; decide whether",
        "# it is required. Fixtures are the results the run's tools returned.",
    ]
    head = {"name": f"{agent}-candidates"[:64], "agent": agent, "systems": "fixtures"}
    lines.append(yaml.safe_dump(head, sort_keys=False).rstrip())
    lines.append("cases:")
    for candidate in candidates:
        note = (
            f"incorrect per feedback; the agent answered: {candidate.output!r}"
            if candidate.source == "feedback"
            else f"sampled; version {candidate.version}"
        )
        lines.append(f"  # run {candidate.run_id} ({note[:300]})")
        block = yaml.safe_dump([_case(candidate)], sort_keys=False, allow_unicode=True, width=100)
        lines.extend("  " + line for line in block.rstrip().splitlines())
    return "\n".join(lines) + "\n"
