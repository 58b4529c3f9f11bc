"""`model: external`: an agent whose reasoning lives outside steward. It needs no
`rules:` section, and nothing may configure a model steward would call for it."""

from __future__ import annotations

import pytest

from steward.core.errors import SpecError, StewardError
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec import load_spec_text
from steward.store import Database, Journal

MINIMAL = "name: outside\nmodel: external\n"


def test_an_external_agent_needs_no_rules_section() -> None:
    loaded = load_spec_text(MINIMAL, "outside.yaml")
    assert loaded.spec.model.name == "external"
    assert build_agent(loaded).model.name == "external"


@pytest.mark.parametrize(
    ("extra", "line", "field", "says"),
    [
        ("rules: {}\n", 3, "rules", "configures the 'rules' model"),
        ("cache: {enabled: true}\n", 3, "cache", "caches only its own"),
        ("models:\n  route: openai:gpt-4o-mini\n", 4, "models.route", "routes no roles"),
    ],
)
def test_an_external_agent_refuses_model_settings_where_they_are(
    extra: str, line: int, field: str, says: str
) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec_text(MINIMAL + extra, "outside.yaml")
    [problem] = raised.value.problems
    assert (problem.line, problem.field) == (line, field)
    assert says in problem.message


def test_external_is_never_a_fallback() -> None:
    text = "name: a\nmodel:\n  name: openai:gpt-4o-mini\n  fallbacks: [external]\n"
    with pytest.raises(SpecError) as raised:
        load_spec_text(text, "a.yaml")
    assert raised.value.problems[0].field == "model.fallbacks[0]"


async def test_the_built_in_runner_refuses_an_external_agent(sqlite_db: Database) -> None:
    journal = Journal(sqlite_db)
    try:
        agent = build_agent(load_spec_text(MINIMAL, "outside.yaml"))
        with pytest.raises(StewardError) as raised:
            await Runner(EmbeddedEngine(sqlite_db, journal)).run(agent, "hello")
        assert raised.value.code == "model.external"
    finally:
        journal.close()
