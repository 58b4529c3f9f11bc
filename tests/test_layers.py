"""Layers import downward only (DESIGN.md): a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "steward"

# Lowest first. Packages on one level may import each other.
LEVELS: dict[str, int] = {
    "core": 0,
    "spec": 1, "policy": 1, "tools": 1, "models": 1, "store": 1, "security": 1, "telemetry": 1,
    "gate": 2, "mcp": 2, "a2a_tools": 2,
    "runtime": 3,
    "demo": 4, "embed": 4, "evals": 4, "prompts": 4, "monitor": 4, "rag": 4, "orchestration": 4, "testing": 4,
    "engines": 4,  # binds runtime's executor and run-store protocols to a backend
    "server": 5, "cli": 5, "gateway": 5, "a2a": 5,
    "adapters": 6,
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("steward."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("steward."))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_package_has_a_level() -> None:
    packages = {p.relative_to(PACKAGE).parts[0] for p in MODULES}
    assert packages <= set(LEVELS), f"give these a layer: {packages - set(LEVELS)}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(module: Path) -> None:
    own = module.relative_to(PACKAGE).parts[0]
    upward = {name for name in _imports(module) if LEVELS.get(name, 99) > LEVELS[own]}
    assert not upward, f"{own} (level {LEVELS[own]}) imports higher layers: {sorted(upward)}"


def test_core_imports_nothing_of_ours_but_core() -> None:
    for module in (PACKAGE / "core").rglob("*.py"):
        assert _imports(module) <= {"core"}, module


def test_only_the_execute_stage_calls_a_tool() -> None:
    """One seam: nothing but the gate's execute stage invokes a tool's function."""
    callers = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if ".function(" in p.read_text(encoding="utf-8")
        or ".function," in p.read_text(encoding="utf-8")
    )
    assert callers == ["gate/stages/execute.py"]


def test_the_runtime_never_imports_a_store() -> None:
    """One loop, two engines: the runtime is written against the executor and run-store
    protocols (runtime/executor.py, runtime/engine.py); engines bind them to a backend."""
    importers = sorted(
        str(p.relative_to(PACKAGE))
        for p in (PACKAGE / "runtime").rglob("*.py")
        if "store" in _imports(p)
    )
    assert importers == []
