"""Hostile spec files: every YAML tag and scalar form loads or gives `file:line:col`, never
a traceback, through the loader and through `steward validate` / `steward serve`.

The fuzz test mutates the demo spec (inserts explicit tags, swaps in odd scalars, deletes
lines, nests values) and asserts only two outcomes: the spec loads, or SpecError with a
location for every problem.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import steward.demo
from steward.cli.main import app
from steward.core.errors import SpecError
from steward.spec import load_spec_text

DEMO_SPEC = Path(steward.demo.__file__).with_name("support_agent.yaml")
DEMO_TEXT = DEMO_SPEC.read_text(encoding="utf-8")
DEMO_LINES = DEMO_TEXT.splitlines()
BASE = "name: probe\nmodel: scripted\ntools: [lookup_order, issue_refund]\n"

TAGS = [
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!str",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!map",
    "!!seq",
    "!!merge",
    "!!value",
    "!!python/object:os.system",
    "!!python/object/apply:os.system",
    "!!python/name:os.system",
    "!!python/tuple",
    "!custom",
    "!<tag:example.com,2000:thing>",
]
SCALARS = [
    "abc",
    "x",
    "",
    "~",
    "null",
    "yes",
    "NO",
    "on",
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "-1e400",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "190:20:30",
    "2001-12-14t21:59:43.10-05:00",
    "2024-13-45",
    "2024-02-30 25:61:61",
    "'quoted'",
    '"\\x00\\u0007"',
    "AAAA====",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "{a: {b: {c: d}}}",
    "&anchor value",
    "<<",
    "=",
    "-1",
    "99999999999999999999999999999",
    "3.0e-400",
]

# (value with a tag) → where the problem is: every known-bad tag is reported on its line
TAGGED_VALUES = [
    ("!!int abc", "max_steps"),
    ("!!float x", "tool_timeout_seconds"),
    ("!!timestamp x", "max_run_seconds"),
    ("!!python/object:os.system {}", "max_steps"),
    ("!!python/object/apply:os.system [echo pwned]", "max_steps"),
    ("!!python/name:os.system", "max_retries"),
    ("!!binary '%%%'", "max_steps"),
    ("!!bool maybe", "max_retries"),
    ("!!null x", "max_steps"),
    ("!!set {a, b}", "max_steps"),
    ("!!omap [a, b]", "max_steps"),
    ("!custom 3", "max_steps"),
]

STEWARD = Path(sys.executable).with_name("steward")
LOCATED = re.compile(r"^.+:\d+:\d+:")


def assert_loads_or_located(text: str, path: str = "fuzz.yaml") -> None:
    """The only acceptable outcomes: a spec, or a SpecError whose every problem is located."""
    try:
        load_spec_text(text, path)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == path
            assert problem.line >= 1 and problem.column >= 1, problem
            assert LOCATED.match(problem.render()), problem.render()


@pytest.mark.parametrize(("value", "key"), TAGGED_VALUES)
def test_a_tagged_value_is_reported_on_its_line(value: str, key: str) -> None:
    text = BASE + f"limits:\n  {key}: {value}\n"
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "tags.yaml")
    lines = {p.line for p in caught.value.problems}
    assert 5 in lines, caught.value.problems
    assert all(p.column >= 1 for p in caught.value.problems)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("where", ["value", "key", "mapping", "sequence", "document"])
def test_every_tag_anywhere_loads_or_is_located(tag: str, where: str) -> None:
    texts = {
        "value": BASE + f"description: {tag} abc\n",
        "key": BASE + f"{tag} abc: 1\n",
        "mapping": BASE + f"limits: {tag} {{max_steps: 3}}\n",
        "sequence": BASE.replace("tools: [", f"tools: {tag} ["),
        "document": f"--- {tag}\n" + BASE,
    }
    assert_loads_or_located(texts[where])


@pytest.mark.parametrize("scalar", SCALARS)
def test_every_scalar_form_loads_or_is_located(scalar: str) -> None:
    for key in ("max_steps", "tool_timeout_seconds", "max_run_seconds"):
        assert_loads_or_located(BASE + f"limits:\n  {key}: {scalar}\n")
    assert_loads_or_located(BASE + f"description: {scalar}\n")
    assert_loads_or_located(BASE.replace("name: probe", f"name: {scalar}"))


def test_deep_nesting_is_located_not_a_recursion_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert_loads_or_located(BASE + f"description: {deep}\n")
    block = "".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v\n"
    assert_loads_or_located(
        BASE + "x:\n" + "".join("  " + line + "\n" for line in block.split("\n"))
    )


def _value_lines() -> list[int]:
    return [i for i, line in enumerate(DEMO_LINES) if re.match(r"^\s*(- )?[\w-]+: \S", line)]


VALUE_LINES = _value_lines()


@st.composite
def mutated_demo(draw: st.DrawFn) -> str:
    """The demo spec with one to four mutations."""
    lines = list(DEMO_LINES)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["tag", "scalar", "delete", "nest", "tag-key", "raw"]))
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        head, sep, tail = line.partition(": ")
        if kind == "tag" and sep:
            lines[index] = f"{head}: {draw(st.sampled_from(TAGS))} {tail}"
        elif kind == "scalar" and sep:
            value = draw(st.one_of(st.sampled_from(SCALARS), st.text(max_size=12)))
            lines[index] = f"{head}: {value}"
        elif kind == "delete":
            del lines[index]
        elif kind == "nest" and sep:
            lines[index] = f"{head}: {draw(st.sampled_from(['[', '{x: ', '- ']))}{tail}" + (
                draw(st.sampled_from(["]", "}", ""]))
            )
        elif kind == "tag-key":
            indent = len(line) - len(line.lstrip())
            lines[index] = " " * indent + f"{draw(st.sampled_from(TAGS))} {line.lstrip()}"
        elif kind == "raw":
            lines.insert(index, draw(st.text(max_size=20)))
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_demo())
def test_mutated_demo_specs_load_or_are_located(text: str) -> None:
    assert_loads_or_located(text)


@pytest.fixture
def demo_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`validate` loads the demo's toolset, which opens its systems database: keep it here."""
    monkeypatch.setenv("STEWARD_DEMO_SYSTEMS", str(tmp_path / "systems.db"))
    return tmp_path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=mutated_demo())
def test_validate_command_never_prints_a_traceback(demo_systems: Path, text: str) -> None:
    path = demo_systems / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert re.search(rf"{re.escape(str(path))}:\d+:\d+:", result.output), result.output


def _steward(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STEWARD), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_real_validate_and_serve_report_tags_with_a_location(tmp_path: Path) -> None:
    """The reported cases, through real `steward validate` and `steward serve` processes:
    each tagged value is reported on its own line (5 to 8), with no traceback."""
    env = {**os.environ, "STEWARD_DEMO_SYSTEMS": str(tmp_path / "systems.db")}
    path = tmp_path / "tagged.yaml"
    keys = ["max_steps", "tool_timeout_seconds", "max_run_seconds", "max_retries"]
    values = ["!!int abc", "!!float x", "!!timestamp x", "!!python/object:os.system {}"]
    body = "".join(f"  {key}: {value}\n" for key, value in zip(keys, values, strict=True))
    path.write_text(BASE + "limits:\n" + body, encoding="utf-8")
    for command in (
        ["validate", str(path)],
        ["serve", "--agent", str(path), "--port", "1", "--db", f"sqlite:///{tmp_path}/s.db"],
    ):
        done = _steward(*command, env=env)
        output = done.stdout + done.stderr
        assert done.returncode == 2, (command, output)
        assert "Traceback" not in output, output
        for line in (5, 6, 7, 8):
            assert f"{path}:{line}:" in output, output
