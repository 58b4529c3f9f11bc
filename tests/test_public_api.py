"""The public surface: every name `steward.__all__` exports exists, is typed (py.typed),
and is documented in the README's "Public API" table, which lists nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import steward

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else len(README)]


def test_every_exported_name_exists() -> None:
    missing = [name for name in steward.__all__ if not hasattr(steward, name)]
    assert not missing, f"in steward.__all__ but not defined: {missing}"
    assert len(set(steward.__all__)) == len(steward.__all__), "a name is exported twice"


def test_every_exported_name_is_documented_and_nothing_else_is() -> None:
    table = _section("### Public API")
    documented = set(re.findall(r"^\| `steward\.(\w+)` \|", table, re.M))
    exported = set(steward.__all__)
    assert exported - documented == set(), "exported but not in README's Public API table"
    assert documented - exported == set(), "in README's Public API table but not exported"


def test_the_package_is_typed() -> None:
    assert (ROOT / "src" / "steward" / "py.typed").is_file()


def test_the_boundary_is_stated_where_users_look() -> None:
    assert steward.__doc__ is not None and "internal" in steward.__doc__
    assert "is internal" in _section("### Public API")


def test_the_embedding_example_runs(tmp_path: Path) -> None:
    section = _section("## Embedding steward in your own agent loop")
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "denied: args.invalid" in done.stdout
    assert re.search(r"^run_\w+ escalated$", done.stdout, re.M), done.stdout


def test_importing_a_module_does_not_load_the_facade() -> None:
    """The facade loads on first use: a telemetry follower or the CLI that imports
    steward.core.events does not pay for the runtime (it took ~2 s, not ~50 ms)."""
    probe = "import sys, steward.core.events; print('steward.runtime.runner' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert set(steward.__all__) == set(steward._EXPORTS) | {"__version__"}
