"""Read a suite file: YAML → Suite, every problem located by file, line, column and field
(the spec loader's machinery, spec/loader.py)."""

from __future__ import annotations

from pathlib import Path

from steward.core.errors import SpecError, SpecProblem
from steward.evals.suite import Suite, check_suite
from steward.spec.loader import field_path, load_located, locate, read_located


def load_suite_text(text: str, path: str = "<suite>") -> Suite:
    suite, marks = load_located(text, path, Suite, what="a mapping with a `cases:` list")
    problems = [
        SpecProblem(path, *locate(marks, loc), field_path(loc), message)
        for loc, message in check_suite(suite)
    ]
    if problems:
        raise SpecError(problems)
    return suite


def load_suite(path: str | Path) -> Suite:
    return load_suite_text(read_located(path), str(path))
