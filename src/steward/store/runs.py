"""Reading runs and their journals; recording agent versions."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from steward.core.errors import NotFoundError
from steward.core.events import AnyEvent, decode_event
from steward.store.database import Database
from steward.store.schema import agent_versions, events, runs
from steward.store.search import RunFilter, conditions


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    agent: str
    agent_version: str
    status: str
    input: str
    output: str
    confidence: float | None
    reason_code: str
    reason: str
    steps: int
    tags: dict[str, str]
    created_at: float
    updated_at: float
    finished_at: float | None
    label: str = ""  # the label that chose agent_version (migration 0012)
    arm: str = ""  # its canary arm: stable | canary | ""
    # a delegated run (migration 0015): its parent run, the root of its tree, its depth
    parent_run_id: str | None = None
    root_run_id: str | None = None
    hop: int = 0

    @property
    def latency_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.created_at


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    ts: float
    type: str
    event: AnyEvent


def run_row(row: Any) -> RunRow:
    return RunRow(
        id=row.id,
        agent=row.agent,
        agent_version=row.agent_version,
        status=row.status,
        input=row.input,
        output=row.output,
        confidence=row.confidence,
        reason_code=row.reason_code,
        reason=row.reason,
        steps=row.steps,
        tags=json.loads(row.tags or "{}"),
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        label=getattr(row, "label", "") or "",
        arm=getattr(row, "arm", "") or "",
        parent_run_id=getattr(row, "parent_run_id", None),
        root_run_id=getattr(row, "root_run_id", None),
        hop=getattr(row, "hop", 0) or 0,
    )


def get_run(db: Database, run_id: str) -> RunRow:
    with db.reader.connect() as connection:
        row = connection.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run with id {run_id!r}")
    return run_row(row)


def run_tree(db: Database, root_run_id: str) -> list[RunRow]:
    """A run tree (delegation): the root first, then every run below it in start order.
    Raises NotFoundError when the root is unknown."""
    root = get_run(db, root_run_id)
    query = (
        select(runs)
        .where(runs.c.root_run_id == root_run_id)
        .order_by(runs.c.created_at, runs.c.hop, runs.c.id)
    )
    with db.reader.connect() as connection:
        return [root, *(run_row(r) for r in connection.execute(query))]


def ancestry(db: Database, run_id: str) -> list[RunRow]:
    """The chain from a run's root down to the run itself (one row for a root run).
    Raises NotFoundError when the run is unknown."""
    chain = [get_run(db, run_id)]
    while chain[0].parent_run_id is not None and len(chain) <= _MAX_DEPTH:
        chain.insert(0, get_run(db, chain[0].parent_run_id))
    return chain


def chains(db: Database, run_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """For each run, the agents of its run tree from the root down to it ("triage",
    "orders", "billing"); one agent for a root run. Two queries however many runs: the
    runs, then every run of the trees they belong to."""
    wanted = set(run_ids)
    if not wanted:
        return {}
    with db.reader.connect() as connection:
        rows = {r.id: r for r in connection.execute(_tree_columns().where(runs.c.id.in_(wanted)))}
        roots = {r.root_run_id for r in rows.values() if r.root_run_id is not None}
        if roots:
            query = _tree_columns().where(or_(runs.c.id.in_(roots), runs.c.root_run_id.in_(roots)))
            rows.update({r.id: r for r in connection.execute(query)})
    found: dict[str, tuple[str, ...]] = {}
    for run_id in wanted & rows.keys():
        chain: list[str] = []
        at = rows.get(run_id)
        while at is not None and len(chain) <= _MAX_DEPTH:
            chain.append(at.agent)
            at = rows.get(at.parent_run_id) if at.parent_run_id is not None else None
        found[run_id] = tuple(reversed(chain))
    return found


def _tree_columns() -> Any:
    return select(runs.c.id, runs.c.agent, runs.c.parent_run_id, runs.c.root_run_id)


def root_of(db: Database, run_id: str) -> str:
    """The root of a run's tree (the run itself for a root): the run to resume after a
    decision anywhere in the tree, since a tree is driven from its root."""
    row = get_run(db, run_id)
    return row.root_run_id or row.id


_MAX_DEPTH = 64  # far beyond any max_agent_hops: a corrupt cycle of parents cannot spin


def list_runs(
    db: Database,
    *,
    agent: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: float | None = None,
    before_id: str | None = None,
    where: RunFilter | None = None,
) -> list[RunRow]:
    """Newest first. `before` (a created_at), with `before_id` (the id of the last row
    seen, which breaks ties between runs created in the same instant), pages backwards.
    `where` narrows by words in input or answer, tags and a time range (store/search.py)."""
    query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
    if agent:
        query = query.where(runs.c.agent == agent)
    if status:
        query = query.where(runs.c.status == status)
    if before is not None and before_id is not None:
        query = query.where(
            or_(
                runs.c.created_at < before,
                and_(runs.c.created_at == before, runs.c.id < before_id),
            )
        )
    elif before is not None:
        query = query.where(runs.c.created_at < before)
    with db.reader.connect() as connection:
        if where is not None and not where.empty:
            query = query.where(*conditions(connection, where))
        return [run_row(r) for r in connection.execute(query)]


def read_journal(db: Database, run_id: str) -> list[JournalEntry]:
    return read_journal_after(db, run_id, 0)


def save_agent_version(
    db: Database,
    agent: str,
    version: str,
    spec_text: str,
    prompt: tuple[str, str] | None = None,
) -> None:
    """Record a spec version once (content-addressed: the same text is the same version),
    with the prompt file it names (`(path, text)`), which is part of the version."""
    with db.writer.begin() as connection:
        exists = connection.execute(
            select(agent_versions.c.version).where(
                agent_versions.c.agent == agent, agent_versions.c.version == version
            )
        ).first()
        if exists is None:
            with contextlib.suppress(IntegrityError):  # a concurrent writer saved it
                connection.execute(
                    insert(agent_versions).values(
                        agent=agent,
                        version=version,
                        spec_text=spec_text,
                        created_at=time.time(),
                        prompt_path=prompt[0] if prompt else None,
                        prompt_text=prompt[1] if prompt else None,
                    )
                )


@dataclass(frozen=True, slots=True)
class AgentVersion:
    agent: str
    version: str
    created_at: float
    spec_text: str
    prompt_path: str | None = None
    prompt_text: str | None = None


def latest_agent_versions(db: Database) -> dict[str, AgentVersion]:
    """Each agent that has ever run (its spec version is recorded when a run starts),
    with its newest version: agents are known by their runs, not only by a state change."""
    newest = (
        select(agent_versions.c.agent, func.max(agent_versions.c.created_at).label("at"))
        .group_by(agent_versions.c.agent)
        .subquery()
    )
    query = (
        select(agent_versions)
        .join(
            newest,
            and_(
                agent_versions.c.agent == newest.c.agent,
                agent_versions.c.created_at == newest.c.at,
            ),
        )
        .order_by(agent_versions.c.agent)
    )
    with db.reader.connect() as connection:
        return {r.agent: _version(r) for r in connection.execute(query)}


def list_agent_versions(db: Database, agent: str) -> list[AgentVersion]:
    """Every spec version an agent has run with, newest first."""
    query = (
        select(agent_versions)
        .where(agent_versions.c.agent == agent)
        .order_by(agent_versions.c.created_at.desc())
    )
    with db.reader.connect() as connection:
        return [_version(r) for r in connection.execute(query)]


def _version(r: Any) -> AgentVersion:
    return AgentVersion(r.agent, r.version, r.created_at, r.spec_text, r.prompt_path, r.prompt_text)


def read_journal_after(db: Database, run_id: str, after_id: int) -> list[JournalEntry]:
    """A run's events with ids after `after_id` (for followers: SSE, the console)."""
    query = (
        select(events.c.id, events.c.ts, events.c.type, events.c.data)
        .where(events.c.run_id == run_id, events.c.id > after_id)
        .order_by(events.c.id)
    )
    with db.reader.connect() as connection:
        return [
            JournalEntry(r.id, r.ts, r.type, decode_event(r.data))
            for r in connection.execute(query)
        ]


def get_agent_version(db: Database, agent: str, version: str) -> AgentVersion:
    """A stored version: its spec text and the prompt file it names."""
    with db.reader.connect() as connection:
        row = connection.execute(
            select(agent_versions).where(
                agent_versions.c.agent == agent, agent_versions.c.version == version
            )
        ).first()
    if row is None:
        raise NotFoundError(f"no stored spec for {agent}@{version}")
    return _version(row)


def get_agent_version_text(db: Database, agent: str, version: str) -> str:
    with db.reader.connect() as connection:
        row = connection.execute(
            select(agent_versions.c.spec_text).where(
                agent_versions.c.agent == agent, agent_versions.c.version == version
            )
        ).first()
    if row is None:
        raise NotFoundError(f"no stored spec for {agent}@{version}")
    return str(row.spec_text)
