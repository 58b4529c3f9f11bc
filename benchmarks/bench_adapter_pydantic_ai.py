"""Adapter overhead: a tool call (and a model call) governed through a framework adapter
against the same framework's ungoverned call, in the same run.

One function per framework in `FRAMEWORKS`; each adds its measurements to the report.

pydantic_ai: a FunctionModel agent calls one tool per turn (async model function and
tools: no executor thread hop in either). An outermost timing
capability measures each tool call (and each model request) as the agent sees it: for the
governed agent that includes steward's decision (`Run.decide`: kill switch, validation,
policy, limits, the write-ahead intent of a write made durable) and the recorded result;
for the ungoverned one, the tool alone. Governed and ungoverned runs alternate, on a
temporary SQLite file, every call with a fresh call id.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import steward
from _common import Measurement, Report, main, scaled

SPEC_PYDANTIC_AI = """\
name: bench-pydantic-ai
model: external
tools: [lookup, put]
decision_authority:
  autonomous: [lookup, put]
"""


async def bench_pydantic_ai(report: Report, quick: bool) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models import Model, ModelRequestParameters
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.tools import RunContext
    from pydantic_ai.toolsets import AbstractToolset, ToolsetTool, WrapperToolset
    from pydantic_ai.usage import RequestUsage

    from steward.adapters.pydantic_ai import Governed

    turns = scaled(quick, 40, 10)  # under the default request_limit of 50
    runs = scaled(quick, 10, 2)

    @dataclass
    class Timed(WrapperToolset[Any]):
        samples: list[int] = field(default_factory=list)

        async def call_tool(
            self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
        ) -> Any:
            began = time.perf_counter_ns()
            try:
                return await self.wrapped.call_tool(name, tool_args, ctx, tool)
            finally:
                self.samples.append(time.perf_counter_ns() - began)

    class TimedModel(WrapperModel):
        def __init__(self, wrapped: Model, samples: list[int]) -> None:
            super().__init__(wrapped)
            self.samples = samples

        async def request(
            self,
            messages: list[ModelMessage],
            model_settings: ModelSettings | None,
            model_request_parameters: ModelRequestParameters,
        ) -> ModelResponse:
            began = time.perf_counter_ns()
            try:
                return await self.wrapped.request(
                    messages, model_settings, model_request_parameters
                )
            finally:
                self.samples.append(time.perf_counter_ns() - began)

    @dataclass
    class Timer(AbstractCapability[Any]):
        tools: list[int] = field(default_factory=list)
        models: list[int] = field(default_factory=list)

        def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any]:
            return Timed(toolset, self.tools)

        def get_wrapper_model(self, model: Model) -> Model:
            return TimedModel(model, self.models)

    def script(tool: str) -> FunctionModel:
        async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            n = sum(isinstance(m, ModelResponse) for m in messages)
            usage = RequestUsage(input_tokens=100, output_tokens=10)
            if n >= turns:
                return ModelResponse([TextPart("done")], usage=usage)
            return ModelResponse([ToolCallPart(tool, {"key": f"k{n}", "value": n})], usage=usage)

        return FunctionModel(respond, model_name="gpt-4o-mini")

    def build(tool: str, capabilities: list[AbstractCapability[Any]]) -> Agent[None, str]:
        agent = Agent(script(tool), capabilities=capabilities)
        store: dict[str, int] = {}

        @agent.tool_plain
        async def lookup(key: str, value: int) -> int:
            return store.get(key, value)

        @agent.tool_plain
        async def put(key: str, value: int) -> str:
            store[key] = value
            return "ok"

        return agent

    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "agents"
        specs.mkdir()
        (specs / "bench.yaml").write_text(SPEC_PYDANTIC_AI, encoding="utf-8")
        async with steward.open(f"sqlite:///{tmp}/steward.db", specs=specs) as st:
            for tool, effect in (("lookup", "read"), ("put", "write")):
                plain, governed = Timer(), Timer()
                gov = Governed(st, "bench-pydantic-ai", effects={"lookup": "read"})
                for i in range(runs + 1):  # the first pair warms up
                    plain_agent = build(tool, [plain])
                    governed_agent = build(tool, [governed, gov])
                    await plain_agent.run(f"go {i}")
                    await governed_agent.run(f"go {i}")
                    if i == 0:
                        plain.tools.clear(), plain.models.clear()
                        governed.tools.clear(), governed.models.clear()
                base = report.add(
                    Measurement(
                        f"pydantic_ai.{tool}.ungoverned",
                        f"pydantic_ai: {effect} tool call, ungoverned (baseline)",
                        plain.tools,
                    )
                )
                over = report.add(
                    Measurement(
                        f"pydantic_ai.{tool}.governed",
                        f"pydantic_ai: {effect} tool call through Governed",
                        governed.tools,
                    )
                )
                report.figure(
                    f"pydantic_ai.{tool}.overhead_p50",
                    f"pydantic_ai: governed {effect} call overhead at p50",
                    over.p50_us - base.p50_us,
                    "µs",
                )
                if tool == "lookup":
                    model_base = report.add(
                        Measurement(
                            "pydantic_ai.model.ungoverned",
                            "pydantic_ai: FunctionModel request, ungoverned (baseline)",
                            plain.models,
                        )
                    )
                    model_over = report.add(
                        Measurement(
                            "pydantic_ai.model.governed",
                            "pydantic_ai: model request through Governed (reserve, settle)",
                            governed.models,
                        )
                    )
                    report.figure(
                        "pydantic_ai.model.overhead_p50",
                        "pydantic_ai: governed model request overhead at p50",
                        model_over.p50_us - model_base.p50_us,
                        "µs",
                    )


FRAMEWORKS: dict[str, Callable[[Report, bool], Awaitable[None]]] = {
    "pydantic_ai": bench_pydantic_ai,
}


async def collect(quick: bool) -> Report:
    report = Report("adapter_pydantic_ai", "Adapter overhead per governed call", quick)
    for bench in FRAMEWORKS.values():
        await bench(report, quick)
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
