"""Token counting (offline BPE) and fitting requests into a context window."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.core.errors import ModelError
from steward.core.events import RunStatus
from steward.core.messages import Message
from steward.engines.embedded import EmbeddedEngine
from steward.models.pricing import PRICES_ENV
from steward.models.protocol import ModelRequest
from steward.models.tokens import count_messages, count_text, encoding_name
from steward.runtime import Runner, build_agent
from steward.runtime.context import TRIMMED, fit_context
from steward.spec import load_spec_text
from steward.store import Database, Journal
from steward.testing import ScriptedModel, calls, final
from steward.tools import tool


def test_counts_with_the_right_encoding() -> None:
    assert encoding_name("openai:gpt-4o-mini") == "o200k_base"
    assert encoding_name("anthropic:claude-sonnet-4-5") == "cl100k_base"
    assert count_text("openai:gpt-4o", "Hello world") == 2
    assert count_text("openai:gpt-4o", "Where is my order #10005?") > 5
    two = count_messages("openai:gpt-4o", (Message("user", "hi"), Message("assistant", "hello")))
    assert two == 3 + 2 * 4 + count_text("openai:gpt-4o", "hi") + count_text(
        "openai:gpt-4o", "hello"
    )


def _request(results: int) -> ModelRequest:
    messages = [Message("user", "summarise the orders")]
    for n in range(results):
        messages.append(Message("tool", "order " * 200, tool_call_id=f"c{n}", name="lookup"))
    return ModelRequest(tuple(messages), max_output_tokens=100)


def test_a_request_that_fits_is_untouched() -> None:
    request = _request(1)
    assert fit_context(request, "openai:gpt-4o", 100_000, "trim_tool_results") is request


def test_the_oldest_tool_results_are_trimmed_first() -> None:
    fitted = fit_context(_request(5), "openai:gpt-4o", 700, "trim_tool_results")
    contents = [m.content for m in fitted.messages if m.role == "tool"]
    assert contents[:3] == [TRIMMED] * 3 and TRIMMED not in contents[3:]
    assert count_messages("openai:gpt-4o", fitted.messages) <= 600


def test_refuse_and_impossible_requests_are_errors() -> None:
    with pytest.raises(ModelError, match="allows") as refused:
        fit_context(_request(5), "openai:gpt-4o", 700, "refuse")
    assert refused.value.code == "model.context_exceeded"
    huge = ModelRequest((Message("user", "word " * 2000),), max_output_tokens=100)
    with pytest.raises(ModelError, match="even with old tool results trimmed"):
        fit_context(huge, "openai:gpt-4o", 700, "trim_tool_results")


@tool(effect="read")
async def lookup(n: int) -> str:
    return "order " * 300


async def test_the_runner_trims_to_the_model_window(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  tiny: {input: 1, output: 1, cached_input: 1, context: 1500}\n")
    monkeypatch.setenv(PRICES_ENV, str(prices))
    spec = load_spec_text(
        "name: t\nmodel: scripted\ntools: [lookup]\ndecision_authority: {autonomous: [lookup]}\n"
        "limits: {max_output_tokens: 100, max_steps: 8}\n",
        "t.yaml",
    )
    model = ScriptedModel(
        [calls(("lookup", {"n": n})) for n in range(5)] + [final("done")], name="openai:tiny"
    )
    journal = Journal(sqlite_db)
    result = await Runner(EmbeddedEngine(sqlite_db, journal)).run(
        build_agent(spec, [lookup], model=model), "go"
    )
    journal.close()
    assert result.status is RunStatus.SUCCEEDED
    last = model.requests[-1]
    assert sum(m.content == TRIMMED for m in last.messages) >= 1
    assert count_messages("openai:tiny", last.messages) <= 1500 - 100
