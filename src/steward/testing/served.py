"""A `steward serve` in a process of its own, for crash tests and the crash soak
(benchmarks/crash_soak.py): start it over a database, kill it with SIGKILL at any
moment, start it again over the same database.

It serves the demo support desk as `crash_desk_spec` shapes it: few slots
(limits.max_concurrent_runs) and a `hold` tool that keeps a slot busy while the file
named by $STEWARD_TEST_HOLD_FILE exists, so a test can fill every slot on purpose.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steward.demo.tools import SYSTEMS_ENV, support_tools
from steward.store.chain import verify_chain
from steward.store.database import Database
from steward.tools import Tool, tool

HOLD_ENV = "STEWARD_TEST_HOLD_FILE"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "demo" / "support_agent.yaml"


def crash_desk_tools() -> list[Tool]:
    """The demo desk's tools, and `hold`."""

    @tool(effect="read", idempotent=True)
    def hold() -> str:
        """Wait while the file named by $STEWARD_TEST_HOLD_FILE exists (60 s at most)."""
        named = os.environ.get(HOLD_ENV, "")
        deadline = time.monotonic() + 60
        while named and Path(named).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "released"

    return [*support_tools(), hold]


def crash_desk_spec(max_concurrent_runs: int = 1) -> str:
    """The demo support desk with `max_concurrent_runs` slots; a ticket that starts with
    "hold" calls `hold`."""
    spec = yaml.safe_load(DEMO_SPEC.read_text(encoding="utf-8"))
    spec["tools"].append("hold")
    spec["toolsets"] = [f"{__name__}:crash_desk_tools"]
    spec["decision_authority"]["autonomous"].append("hold")
    spec["rate_limits"] = {}  # a soak issues more refunds in a minute than the demo allows an hour
    spec["limits"].update(
        max_concurrent_runs=max_concurrent_runs, max_run_seconds=120, tool_timeout_seconds=90
    )
    hold = {"name": "hold", "match": ["(?i)^hold\\b"], "plan": [[{"tool": "hold", "args": {}}]],
            "answer": "Held.", "confidence": 0.9}  # fmt: skip
    spec["rules"]["intents"].insert(0, hold)
    return str(yaml.safe_dump(spec, sort_keys=False))


def refunds_by_run(systems: Path) -> Counter[str]:
    """Refunds the demo systems recorded, by run (a call's idempotency key starts with
    its run id): the side effects a crash test counts."""
    connection = sqlite3.connect(systems)
    try:
        keys = [key for (key,) in connection.execute("SELECT idempotency_key FROM refunds")]
    finally:
        connection.close()
    return Counter(key.split(":", 1)[0] for key in keys)


def chain_verifies(db: Database) -> bool:
    with db.reader.connect() as connection:
        return verify_chain(connection).ok


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_ZYGOTE = """
import json, os, signal, sys
from steward.cli.main import main
import steward.server, uvicorn  # everything `steward serve` imports, imported once
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they die
for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        out = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.environ.clear()
        os.environ.update(order["env"])
        sys.argv = ["steward", *order["args"]]
        try:
            main()
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class Zygote:
    """A process that imports `steward serve`'s code once and forks a fresh server on
    request: a restart costs a fork, not an interpreter start-up (seconds on a busy
    machine). The child runs the same `steward serve` as the command line. A crash point
    (STEWARD_CRASH_AT) is read at import, so it does not reach forked servers."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def spawn(self, args: list[str], env: dict[str, str], log: Path) -> int:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"args": args, "env": env, "log": str(log)}) + "\n")
        stdin.flush()
        return int(stdout.readline())

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=15)


@dataclass
class ServedProcess:
    """`steward serve --agent SPEC [ARGS]` over `db_url`, the demo systems at `systems`;
    a new interpreter each start, or a fork of `zygote`."""

    db_url: str
    spec: Path
    systems: Path
    log: Path
    port: int = field(default_factory=free_port)
    zygote: Zygote | None = None
    args: tuple[str, ...] = ()  # more of the command line (`--engine temporal ...`)
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k != "STEWARD_CRASH_AT"}
        return {**environment, "STEWARD_DB": self.db_url, SYSTEMS_ENV: str(self.systems),
                "STEWARD_TELEMETRY": "off", **extra}  # fmt: skip

    def cli(self, *args: str) -> str:
        """Run another `steward` command over the same database; its stdout."""
        done = subprocess.run(
            [*_steward(), *args], env=self.env(), capture_output=True, text=True, timeout=60,
            check=True,
        )  # fmt: skip
        return done.stdout

    def command(self) -> list[str]:
        """The `steward` command line this process runs."""
        return ["serve", "--agent", str(self.spec), "--port", str(self.port), *self.args]

    def ready(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.base}/healthz", timeout=1).close()
        except OSError:
            return False
        return True

    def start(self, timeout: float = 30.0, **extra_env: str) -> None:
        """Start the process and wait until it is ready (a server answers /healthz)."""
        assert self.pid is None, "already started"
        args = self.command()
        if self.zygote is not None:
            self.pid = self.zygote.spawn(args, self.env(**extra_env), self.log)
        else:
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [*_steward(), *args], env=self.env(**extra_env), stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            self.pid = self.process.pid
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive() or time.monotonic() > deadline:
                self.kill()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"steward {args[0]} did not come up:\n{tail}") from None
            time.sleep(0.05)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float = 15.0) -> int | None:
        """Wait for the process to end; its return code (None for a forked server)."""
        deadline = time.monotonic() + timeout
        code = None
        if self.process is not None:
            code = self.process.wait(timeout=timeout)
        while self.alive():
            if time.monotonic() > deadline:
                raise TimeoutError(f"steward serve (pid {self.pid}) did not end")
            time.sleep(0.01)
        self.process, self.pid = None, None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing the process could still do."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: a graceful stop."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            self.wait(timeout)

    def call(
        self, method: str, path: str, token: str, body: Any = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """One API call; (status, decoded JSON body). Raises OSError when nobody answers."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read() or b"null")
        except http.client.HTTPException as exc:  # the process died mid-answer
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc


READY_LINE = "steward worker ·"


@dataclass
class WorkerProcess(ServedProcess):
    """`steward worker [ARGS]` (a worker of the temporal engine: `args` names the Temporal
    address and task queue) over `db_url`; ready once it says it polls."""

    def command(self) -> list[str]:
        return ["worker", *self.args]

    def ready(self) -> bool:
        try:
            return READY_LINE in self.log.read_text(errors="replace")[self._mark :]
        except OSError:
            return False

    def start(self, timeout: float = 30.0, **extra_env: str) -> None:
        self._mark = len(self.log.read_text(errors="replace")) if self.log.exists() else 0
        super().start(timeout, **extra_env)

    _mark: int = 0


def _steward() -> list[str]:
    script = Path(sys.executable).with_name("steward")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from steward.cli.main import main; main()"]
