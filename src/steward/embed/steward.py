"""Open steward on a database and agent specs, from a program that drives its own agent
loop: start and attach runs, wait for people's decisions."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Generator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from steward.core.approval import ApprovalView
from steward.core.decision import Verdict as Decided
from steward.core.errors import NotFoundError, PermissionDenied, StewardError
from steward.core.events import ApprovalDecided, RunStarted, RunStatus
from steward.embed.outcomes import Approved, PersonDecision, Rejected
from steward.embed.run import Run
from steward.engines.approvals import ApprovalService
from steward.engines.catalog import stored_spec
from steward.engines.embedded import EmbeddedExecutor, EmbeddedStore
from steward.gate.shared import shared_gate_state
from steward.models.external import is_external
from steward.models.pricing import PriceTable, load_prices
from steward.runtime.agent import AgentRuntime, build_agent
from steward.runtime.model_calls import ModelCaller
from steward.runtime.runner import new_run_id
from steward.runtime.runs import VersionMemory, check_enabled, mask_input
from steward.security.keys import Permission, Principal, authorize
from steward.spec.loader import load_spec
from steward.spec.models import EXTERNAL, LoadedSpec
from steward.store.approvals import ApprovalRow, expire_approval, get_approval, get_approval_view
from steward.store.chain import PendingEvent
from steward.store.database import DEFAULT_URL, Database
from steward.store.journal import Journal
from steward.store.keys import authenticate_token
from steward.store.runs import get_run
from steward.tools.base import Tool

SpecSource = str | Path | Iterable[str | Path]


def _spec_files(specs: SpecSource) -> list[Path]:
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return files


class Steward:
    """Steward over one database, with the agent specs it governs. Use `steward.open`."""

    def __init__(
        self,
        db: Database,
        journal: Journal,
        specs: Iterable[LoadedSpec],
        *,
        prices: PriceTable | None = None,
        owned: bool = False,
    ) -> None:
        self.db = db
        self.journal = journal
        self.specs: dict[str, LoadedSpec] = {}
        for loaded in specs:
            if loaded.spec.name in self.specs:
                raise StewardError(
                    f"two specs name agent {loaded.spec.name!r}: "
                    f"{self.specs[loaded.spec.name].path} and {loaded.path}",
                    code="spec.invalid",
                )
            self.specs[loaded.spec.name] = loaded
        # the kill switch cache and limit store the built-in runner uses over this database
        shared = shared_gate_state(db)
        self._states = shared.states
        self._config = shared.config
        self._models = ModelCaller(prices or load_prices(), shared.config.ledger)
        self._versions = VersionMemory(EmbeddedStore(db, journal))
        self._owned = owned
        self._closed = False
        self._decisions: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        journal.subscribe(self._on_commit)
        # Decide approvals as a principal (four eyes, roles): the one approval service.
        # This program resumes its own runs, so deciding resumes nothing here.
        self.approvals = ApprovalService(db, journal, _resume_nothing)

    # -- lifecycle -----------------------------------------------------------------------

    async def close(self) -> None:
        """Make everything recorded durable and, if `steward.open` opened them, close
        the journal and the database."""
        if self._closed:
            return
        self._closed = True
        await self.journal.flush()
        if self._owned:
            await asyncio.to_thread(self.journal.close)
            await asyncio.to_thread(self.db.close)

    async def __aenter__(self) -> Steward:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- runs ------------------------------------------------------------------------------

    def spec(self, agent: str) -> LoadedSpec:
        found = self.specs.get(agent)
        if found is None:
            raise NotFoundError(
                f"no agent {agent!r} is loaded (loaded: {', '.join(sorted(self.specs)) or 'none'})"
            )
        return found

    async def start_run(
        self,
        agent: str,
        text: str,
        *,
        tools: Iterable[Tool] = (),
        tags: dict[str, str] | None = None,
        started_by: str | Principal | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start a run of `agent` (its spec says `model: external`) on the user's words
        `text`: card numbers, SSNs and IBANs are masked before they are recorded; the
        words as typed are kept in memory only, to trace where call arguments came from.
        `started_by`: the API key (or Principal) of whoever starts it: it must be allowed
        to start runs of this agent, and four eyes then keeps them from approving its
        calls. Raises AgentDisabled when the agent's kill switch is off."""
        loaded = self.spec(agent)
        if loaded.spec.model.name != EXTERNAL:
            raise StewardError(
                f"agent {agent} has model {loaded.spec.model.name!r}: steward's runner drives "
                f"it. A program drives only agents whose spec says `model: {EXTERNAL}`",
                code="agent.not_external",
            )
        if not isinstance(text, str):
            raise TypeError("the run's input text must be a str")
        given = dict(tags or {})
        if any(not isinstance(k, str) or not isinstance(v, str) for k, v in given.items()):
            raise TypeError("tags must map str to str")
        if started_by is not None:
            who = await self._principal(started_by)
            decision = authorize(who, Permission.START_RUN, agent)
            if decision.verdict is not Decided.ALLOW:
                reason = decision.reasons[0]
                raise PermissionDenied(reason.message, code=reason.code)
            given.update(who.starter_tags())
        check_enabled(self._states, agent)
        runtime = await _build(loaded, tools, self.db)
        await asyncio.to_thread(self._versions.remember, runtime)
        executor = EmbeddedExecutor(
            self.db, self.journal, run_id or new_run_id(), runtime.name, runtime.version
        )
        masked, kinds = mask_input(text)
        executor.emit(RunStarted(runtime.name, runtime.version, masked, given, kinds))
        await executor.durable()
        return Run(self, runtime, executor, typed=(text,))

    async def attach(self, run_id: str, *, tools: Iterable[Tool] = ()) -> Run:
        """The run `run_id` again, from its journal (another process, after a restart):
        calls already on record answer what they did and never run again. The run keeps
        the spec version it started with."""
        row = await asyncio.to_thread(get_run, self.db, run_id)
        loaded = self.specs.get(row.agent)
        if loaded is None or loaded.version != row.agent_version:
            loaded = await asyncio.to_thread(stored_spec, self.db, row.agent, row.agent_version)
        runtime = await _build(loaded, tools, self.db)
        if not is_external(runtime.model):
            raise StewardError(
                f"run {run_id} is of agent {row.agent}, which steward's runner drives",
                code="agent.not_external",
            )
        executor = EmbeddedExecutor(self.db, self.journal, run_id, runtime.name, runtime.version)
        await asyncio.to_thread(executor.load)
        return Run(self, runtime, executor, waiting=row.status == RunStatus.WAITING.value)

    async def run_status(self, run_id: str) -> str:
        """queued | running | waiting | succeeded | failed | escalated | cancelled"""
        return (await asyncio.to_thread(get_run, self.db, run_id)).status

    async def _principal(self, who: str | Principal) -> Principal:
        if isinstance(who, Principal):
            return who
        found = await asyncio.to_thread(authenticate_token, self.db, who)
        if found is None:
            raise PermissionDenied("started_by is not a valid API key", code="auth.invalid")
        return found

    # -- people's decisions --------------------------------------------------------------

    async def wait_for_decision(
        self,
        approval_id: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline is part of the contract
        *,
        poll: float = 0.25,
    ) -> PersonDecision:
        """Wait until a person decides approval `approval_id` (from any process: the
        store is the truth; a decision through this process's journal wakes the wait at
        once, one made elsewhere is seen within `poll` seconds). Approved | Rejected (a
        rejection, an expiry, a cancelled run). Raises TimeoutError after `timeout`
        seconds; the request stays pending."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        woken = asyncio.Event()
        waiters = self._decisions.setdefault(approval_id, [])
        waiters.append((loop, woken))
        try:
            while True:
                woken.clear()
                row, view = await asyncio.to_thread(_read_approval, self.db, approval_id)
                if row.status == "pending" and row.expires_at <= time.time():
                    await asyncio.to_thread(
                        expire_approval, self.db, approval_id, on_commit=self.journal.publish
                    )
                    continue
                if row.status != "pending":
                    return _decision(row, view)
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"approval {approval_id} is still pending after {timeout:g} s"
                    )
                pause = poll if left is None else min(poll, left)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), pause)
        finally:
            waiters.remove((loop, woken))
            if not waiters:
                self._decisions.pop(approval_id, None)

    def _on_commit(self, batch: list[PendingEvent]) -> None:
        """Journal listener (writer thread): wake whoever waits for a decided approval."""
        for pending in batch:
            event = pending.event
            if isinstance(event, ApprovalDecided):
                for loop, woken in list(self._decisions.get(event.approval_id, ())):
                    loop.call_soon_threadsafe(woken.set)


async def _resume_nothing(run_id: str, reason: str) -> None:
    del run_id, reason


def _read_approval(db: Database, approval_id: str) -> tuple[ApprovalRow, ApprovalView | None]:
    return get_approval(db, approval_id), get_approval_view(db, approval_id)


def _decision(row: ApprovalRow, view: ApprovalView | None) -> PersonDecision:
    call_id = row.key.removeprefix(f"{row.run_id}:").partition(":")[2]
    if row.status == "approved":
        edited = view.decided_arguments if view is not None else None
        return Approved(
            row.id, edited if edited is not None else row.arguments, row.decided_by, row.comment,
            edited=edited is not None, run_id=row.run_id, call_id=call_id,
        )  # fmt: skip
    status: Literal["rejected", "expired", "cancelled"] = (
        "expired" if row.status == "expired" else
        "cancelled" if row.status == "cancelled" else "rejected"
    )  # fmt: skip
    return Rejected(row.id, row.decided_by, row.comment, status, row.run_id, call_id)


class _Opening:
    """`await steward.open(...)`, or `async with steward.open(...) as st:`."""

    def __init__(self, url: str, specs: SpecSource, prices: PriceTable | str | Path | None) -> None:
        self._args = (url, specs, prices)
        self._opened: Steward | None = None

    async def _open(self) -> Steward:
        url, specs, prices = self._args

        def opening() -> tuple[Database, list[LoadedSpec], PriceTable]:
            loaded = [load_spec(path) for path in _spec_files(specs)]
            table = prices if isinstance(prices, PriceTable) else load_prices(prices)
            return Database.open(url), loaded, table

        db, loaded, table = await asyncio.to_thread(opening)
        journal = Journal(db)
        try:
            return Steward(db, journal, loaded, prices=table, owned=True)
        except BaseException:
            journal.close()
            db.close()
            raise

    def __await__(self) -> Generator[Any, None, Steward]:
        return self._open().__await__()

    async def __aenter__(self) -> Steward:
        self._opened = await self._open()
        return self._opened

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._opened is not None:
            await self._opened.close()


def open(
    url: str = DEFAULT_URL,
    specs: SpecSource = (),
    *,
    prices: PriceTable | str | Path | None = None,
) -> _Opening:
    """Open steward on the database at `url` (`sqlite:///path.db`, `postgresql+psycopg://…`;
    created and migrated when new) with the agent specs at `specs` (a spec file, a
    directory of them, or several). A spec that does not load raises SpecError, with
    file, line and field. `prices`: a price table (file) over the shipped one."""
    return _Opening(url, specs, prices)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


async def _build(loaded: LoadedSpec, tools: Iterable[Tool], db: Database) -> AgentRuntime:
    """The agent with the program's tools; one with MCP servers lists their tools (and pins
    them in `db`) off the event loop."""
    if loaded.spec.mcp_servers:
        return await asyncio.to_thread(build_agent, loaded, list(tools), unbound=True, db=db)
    return build_agent(loaded, list(tools), unbound=True)
