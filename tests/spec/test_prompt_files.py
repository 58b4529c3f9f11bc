"""Prompt files: a prompt in its own YAML file, referenced by agent specs. Its text is
part of the agent's version; a stored version keeps the prompt it was saved with."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from steward.core.errors import SpecError
from steward.engines.catalog import stored_spec
from steward.engines.embedded import EmbeddedEngine
from steward.runtime import Runner, build_agent
from steward.spec.loader import load_spec
from steward.store import Database
from steward.store.journal import Journal
from steward.store.runs import save_agent_version
from steward.testing.scripted import ScriptedModel, final

PROMPT = """\
name: triage-agent
model: scripted
temperature: 0.2
max_tokens: 300
expected_output_format: one sentence
evaluation_rubric: "5: right queue"
system_prompt: You route tickets to the right queue.
"""

SPEC = "name: triage\nmodel: scripted\nprompt_file: prompts/triage-agent.yaml\n"


def write(tmp_path: Path, prompt: str = PROMPT, spec: str = SPEC) -> Path:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts" / "triage-agent.yaml").write_text(prompt)
    (tmp_path / "triage.yaml").write_text(spec)
    return tmp_path / "triage.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [p.render() for p in caught.value.problems]


def test_the_prompt_file_configures_the_agent(tmp_path: Path) -> None:
    loaded = load_spec(write(tmp_path))
    assert loaded.spec.prompt == "You route tickets to the right queue."
    assert loaded.spec.temperature == 0.2 and loaded.spec.limits.max_output_tokens == 300
    assert loaded.prompt is not None and loaded.prompt.prompt.evaluation_rubric == "5: right queue"


def test_a_prompt_change_is_a_new_version_of_the_agent(tmp_path: Path) -> None:
    before = load_spec(write(tmp_path)).version
    after = load_spec(write(tmp_path, PROMPT.replace("right queue.", "right queue, fast."))).version
    assert before != after
    assert (
        load_spec(write(tmp_path)).version == before
    )  # content-addressed: same text, same version


@pytest.mark.parametrize(
    ("prompt", "spec", "expected"),
    [
        (PROMPT, SPEC.replace("triage-agent.yaml", "missing.yaml"),
         "triage.yaml:3:1: prompt_file: {dir}/prompts/missing.yaml: no such file"),
        (PROMPT.replace("temperature: 0.2", "temperature: 9"), SPEC,
         "{dir}/prompts/triage-agent.yaml:3:1: temperature: Input should be less than or equal to 2"),
        (PROMPT.replace("system_prompt", "sytem_prompt"), SPEC,
         "{dir}/prompts/triage-agent.yaml:7:1: sytem_prompt: unknown key 'sytem_prompt'"),
        (PROMPT, SPEC + "prompt: inline too\n",
         "triage.yaml:3:1: prompt_file: give `prompt` or `prompt_file`, not both"),
        (PROMPT.replace("model: scripted", "model: openai:gpt-4o"), SPEC,
         "triage.yaml:3:1: prompt_file: the prompt is written for model 'openai:gpt-4o', the spec runs 'scripted'"),
    ],
)  # fmt: skip
def test_prompt_file_problems_are_located(
    tmp_path: Path, prompt: str, spec: str, expected: str
) -> None:
    found = problems(write(tmp_path, prompt, spec))
    wanted = expected.format(dir=tmp_path)
    assert any(p.endswith(wanted) or wanted in p for p in found), found


def test_a_stored_version_keeps_its_prompt(tmp_path: Path, sqlite_db: Database) -> None:
    loaded = load_spec(write(tmp_path))
    assert loaded.prompt is not None
    save_agent_version(
        sqlite_db, "triage", loaded.version, loaded.text, (loaded.prompt.path, loaded.prompt.text)
    )
    write(tmp_path, PROMPT.replace("right queue.", "wrong queue."))  # the file moves on
    again = stored_spec(sqlite_db, "triage", loaded.version)
    assert again.version == loaded.version and again.spec.prompt == loaded.spec.prompt


def test_the_runner_sends_the_prompt_and_its_temperature(
    tmp_path: Path, sqlite_db: Database
) -> None:
    model = ScriptedModel([final("billing queue")])
    agent = build_agent(load_spec(write(tmp_path)), model=model)

    async def go() -> None:
        journal = Journal(sqlite_db)
        try:
            await Runner(EmbeddedEngine(sqlite_db, journal)).run(agent, "my invoice is wrong")
        finally:
            journal.close()

    asyncio.run(go())
    request = model.requests[0]
    assert request.messages[0].role == "system"
    assert request.messages[0].content == "You route tickets to the right queue."
    assert request.temperature == 0.2 and request.max_output_tokens == 300
