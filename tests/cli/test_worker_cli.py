"""`steward worker` and `--engine temporal` without the `temporal` extra: one clear line
and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WITHOUT_TEMPORALIO = (
    "import sys; sys.modules['temporalio'] = None; "  # as if the extra were not installed
    "from steward.cli.main import main; main()"
)


@pytest.mark.parametrize(
    "args",
    [["worker"], ["demo", "--engine", "temporal", "--limit", "1"]],
    ids=["worker", "demo"],
)
def test_the_temporal_engine_without_its_extra_says_what_to_install(
    args: list[str], tmp_path: Path
) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env["STEWARD_DEMO_SYSTEMS"] = str(tmp_path / "systems.db")
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TEMPORALIO, *args, "--db", f"sqlite:///{tmp_path / 's.db'}"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "pip install 'steward-governance[temporal]'" in said
    assert "Traceback" not in said
