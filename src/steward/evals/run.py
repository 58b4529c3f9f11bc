"""Run a suite against an agent version: every case is a real run through the runner and
the gate, recorded in a scratch journal, with its tools bound to a sandbox or to fixtures,
never to the systems the spec's `toolsets` name.

- `systems: sandbox`: the suite's `toolset` (module:function) is called with the path of
  a fresh sandbox file in the evaluation's scratch directory, once per evaluation; the
  demo's `steward.demo.tools:support_tools` builds the support desk's systems there.
- `systems: fixtures`: each tool a case names in `fixtures:` answers with that recorded
  result; a call policy allows to any other fails with `eval.no_fixture`. The suite's
  `toolset`, when given, supplies the tools' definitions (schema, effect, data classes)
  so policy decides them as in production; its functions are never called.

The spec's own `toolsets` are never imported: the agent is built from a copy without
them, so a tool the sandbox does not provide is denied `tool.unbound`, not run for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steward.core.errors import SpecError, SpecProblem, StewardError, ToolExecutionError
from steward.engines.embedded import EmbeddedEngine
from steward.evals.checks import check, observe
from steward.evals.judge import PASS, UNCERTAIN, Judge
from steward.evals.results import ERROR, FAILED, PASSED, CaseResult, SuiteResult
from steward.evals.suite import Case, Suite, Systems
from steward.models.factory import models_for
from steward.models.protocol import Model
from steward.runtime import Runner, build_agent
from steward.runtime.agent import AgentRuntime
from steward.spec.models import AgentSpec, LoadedSpec
from steward.store.database import Database
from steward.store.journal import Journal
from steward.store.runs import read_journal
from steward.tools.base import Effect, Tool, compile_validator
from steward.tools.builtin import BUILTINS

CaseDone = Callable[[CaseResult], None]


def judge_model(suite: Suite) -> Model | None:
    """The suite's judge through steward's own providers (retries and fallbacks too)."""
    if suite.judge is None:
        return None
    return models_for(AgentSpec(name="eval-judge", model=suite.judge.model))


def _toolset(ref: str, where: Path) -> list[Tool]:
    module_name, _, attr = ref.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
        return list(factory(where))
    except Exception as exc:
        raise SpecError(
            [SpecProblem("<suite>", 1, 1, "toolset", f"cannot load {ref}: {exc}")]
        ) from None


def _recorded(name: str, definitions: dict[str, Tool], function: Callable[..., Any]) -> Tool:
    """The tool `name` answering with `function`: its real definition (schema, effect,
    data classes) when the suite's toolset gives one, so policy decides it as in
    production; otherwise a permissive read."""
    known = definitions.get(name)
    if known is not None:
        return dataclasses.replace(
            known, function=function, context_param=None, is_async=False, timeout=None
        )
    schema: dict[str, Any] = {"type": "object"}
    return Tool(
        name=name,
        description=f"{name} (recorded)",
        parameters=schema,
        function=function,
        effect=Effect.READ,
        validator=compile_validator(schema),
        idempotent=True,
    )


def _fixture_tools(case: Case, listed: tuple[str, ...], definitions: dict[str, Tool]) -> list[Tool]:
    """Every tool the agent lists: those the case recorded answer with their result; a
    call of any other that policy allows fails (`no recorded result`), never runs."""
    tools = []
    for name in listed:
        if name in BUILTINS:
            continue
        if name in case.fixtures:

            def answer(_recorded: Any = case.fixtures[name], **_: Any) -> Any:
                return _recorded

            tools.append(_recorded(name, definitions, answer))
        else:

            def missing(_name: str = name, **_: Any) -> Any:
                raise ToolExecutionError(
                    f"no recorded result for {_name} in this case's fixtures",
                    code="eval.no_fixture",
                    retryable=False,
                )

            tools.append(_recorded(name, definitions, missing))
    return tools


def _sandboxed(loaded: LoadedSpec) -> LoadedSpec:
    """The same version, minus the production toolsets."""
    return loaded.model_copy(update={"spec": loaded.spec.model_copy(update={"toolsets": ()})})


class Evaluation:
    def __init__(
        self,
        suite: Suite,
        loaded: LoadedSpec,
        *,
        judge: Model | None = None,
        workdir: Path | None = None,
    ) -> None:
        if suite.agent is not None and suite.agent != loaded.spec.name:
            raise StewardError(
                f"suite {suite.name} evaluates agent {suite.agent}, not {loaded.spec.name}"
            )
        self.suite = suite
        self.loaded = loaded
        self.workdir = workdir
        model = judge if judge is not None else judge_model(suite)
        rubric = loaded.prompt.prompt.evaluation_rubric if loaded.prompt is not None else ""
        self.judge = (
            Judge(model, suite.judge, rubric) if model is not None and suite.judge else None
        )

    async def run(self, on_case: CaseDone | None = None) -> SuiteResult:
        with tempfile.TemporaryDirectory(prefix="steward-eval-", dir=self.workdir) as scratch:
            return await self._run(Path(scratch), on_case)

    async def _run(self, scratch: Path, on_case: CaseDone | None) -> SuiteResult:
        result = SuiteResult(
            self.suite.name,
            self.loaded.spec.name,
            self.loaded.version,
            self.suite.systems.value,
            time.time(),
        )
        db = Database.open(f"sqlite:///{scratch / 'journal.db'}")
        journal = Journal(db)
        runner = Runner(EmbeddedEngine(db, journal))
        spec = _sandboxed(self.loaded)
        definitions: dict[str, Tool] = {}
        shared: AgentRuntime | None = None
        if self.suite.toolset is not None:
            definitions = {t.name: t for t in _toolset(self.suite.toolset, scratch / "sandbox.db")}
        if self.suite.systems is Systems.SANDBOX:
            shared = build_agent(spec, list(definitions.values()), unbound=True)
        gate = asyncio.Semaphore(self.suite.concurrency)
        began = time.perf_counter()
        by_id: dict[str, CaseResult] = {}

        async def one(case: Case) -> None:
            async with gate:
                agent = shared or build_agent(
                    spec, _fixture_tools(case, spec.spec.tools, definitions), unbound=True
                )
                done = await self._case(runner, db, journal, agent, case)
            by_id[case.id] = done
            if on_case is not None:
                on_case(done)

        try:
            await asyncio.gather(*(one(c) for c in self.suite.cases))
        finally:
            journal.close()
            db.close()
        result.cases = [by_id[c.id] for c in self.suite.cases]
        result.seconds = time.perf_counter() - began
        return result

    async def _case(
        self, runner: Runner, db: Database, journal: Journal, agent: AgentRuntime, case: Case
    ) -> CaseResult:
        out = CaseResult(case.id, case.required, ERROR, list(case.tags))
        try:
            ran = await runner.run(
                agent, case.input, tags={"eval_suite": self.suite.name, "eval_case": case.id}
            )
            await journal.flush()
            entries = await asyncio.to_thread(read_journal, db, ran.run_id)
        except StewardError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            return out
        seen = observe(
            entries,
            status=ran.status.value,
            output=ran.output,
            confidence=ran.confidence,
            reason_code=ran.reason_code,
            seconds=ran.seconds,
        )
        out.run_id, out.status, out.output = ran.run_id, ran.status.value, ran.output
        out.seconds, out.cost_usd = ran.seconds, seen.cost_usd
        checks = check(case.expect, seen)
        out.checks = [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks]
        verdicts: list[str] = []
        if case.expect.judged and self.judge is not None:
            for criterion in case.expect.judged:
                judged = await self.judge.judge(
                    criterion.criterion, case.input, ran.output, criterion.threshold
                )
                out.judged.append(judged.as_dict())
                verdicts.append(judged.verdict)
        if not all(c.passed for c in checks) or any(v not in {PASS, UNCERTAIN} for v in verdicts):
            out.outcome = FAILED
        elif UNCERTAIN in verdicts:
            out.outcome = UNCERTAIN
        else:
            out.outcome = PASSED
        return out


async def evaluate(
    suite: Suite,
    loaded: LoadedSpec,
    *,
    judge: Model | None = None,
    on_case: CaseDone | None = None,
) -> SuiteResult:
    """Run every case of `suite` against the agent version `loaded`."""
    return await Evaluation(suite, loaded, judge=judge).run(on_case)
