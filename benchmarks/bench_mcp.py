"""The MCP gateway's cost: a governed `tools/call` through `steward gateway` against the
same upstream MCP tool called directly, in the same run, on the same machine.

The upstream is a trivial MCP server (the official SDK's low-level Server, `echo`,
streamable HTTP, stateless, JSON responses). The gateway serves an agent whose `echo` is
that upstream tool, called over MCP; every call crosses the gate (validation, policy,
limits, journal commit, scan, audit) on a SQLite file. Both are separate processes; one
load generator (raw JSON-RPC over HTTP/1.1 keep-alive, protocol revision 2026-07-28)
drives either, so the client's cost is the same on both sides.

Measured, alternating direct and governed, 3 rounds (medians reported): latency with one
call in flight (p50/p95/p99; added = governed - direct), and calls/s at saturation
(`CONCURRENCY` calls in flight). The gateway's CPU per call is read from /proc (robust to a
busy machine, unlike wall-clock rates), also for an in-process tool (no upstream hop), to
show what the upstream hop costs. `--profile` runs the gateway under pyinstrument for
one saturation phase of the in-process tool and prints where its time goes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx2

from _common import Measurement, Report, main, scaled

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CONCURRENCY = 32
SPEC = """
name: bench-mcp
model: external
tools: [echo, echo_local]
toolsets: ["_mcp_bench_tools:tools"]
decision_authority:
  autonomous: [echo, echo_local]
"""
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
           "Mcp-Method": "tools/call", "Mcp-Name": "echo",
           "Content-Type": "application/json"}  # fmt: skip
PROFILE = "--profile" in sys.argv
if PROFILE:
    sys.argv.remove("--profile")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.05)


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.up_port, self.gw_port = _port(), _port()
        self.upstream = f"http://127.0.0.1:{self.up_port}/mcp"
        self.gateway = f"http://127.0.0.1:{self.gw_port}/mcp"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]),
                    "BENCH_UPSTREAM": self.upstream, "STEWARD_TELEMETRY": "off",
                    "STEWARD_DB": f"sqlite:///{tmp / 'gw.db'}"}  # fmt: skip
        self.running: list[subprocess.Popen[bytes]] = []
        self.token = ""

    def start_upstream(self) -> None:
        log = self.tmp / "upstream.log"
        process = subprocess.Popen([sys.executable, str(HERE / "_mcp_upstream.py"), str(self.up_port)],
                                   env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        self.running.append(process)
        _wait(f"http://127.0.0.1:{self.up_port}/livez", process, log)

    def start_gateway(self, profile: Path | None = None) -> subprocess.Popen[bytes]:
        (self.tmp / "specs").mkdir(exist_ok=True)
        (self.tmp / "specs" / "bench.yaml").write_text(SPEC)
        if not self.token:
            self.token = self._key()
        steward_main = "from steward.cli.main import main; main()"
        command = [sys.executable, "-c", steward_main]
        if profile is not None:
            script = self.tmp / "steward_main.py"
            script.write_text(steward_main + "\n")
            command = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile), str(script)]  # fmt: skip
        log = self.tmp / "gateway.log"
        process = subprocess.Popen(
            [*command, "gateway", "--agent", str(self.tmp / "specs"), "--port", str(self.gw_port)],
            env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.running.append(process)
        _wait(f"http://127.0.0.1:{self.gw_port}/livez", process, log)
        return process

    def _key(self) -> str:
        sys.path.insert(0, str(SRC))
        from steward.security.keys import Role
        from steward.store.database import Database
        from steward.store.keys import create_key

        db = Database.open(self.env["STEWARD_DB"])
        try:
            return create_key(
                db, name="bench-client", role=Role.AGENT, agent="bench-mcp", by="bench"
            )[1]
        finally:
            db.close()

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.running.remove(process)

    def close(self) -> None:
        for process in list(self.running):
            self.stop(process)


class Load:
    """JSON-RPC `tools/call echo` requests against one endpoint."""

    def __init__(self, url: str, token: str = "", tool: str = "echo") -> None:
        self.url = url
        self.tool = tool
        self.headers = {**HEADERS, "Mcp-Name": tool,
                        **({"Authorization": f"Bearer {token}"} if token else {})}  # fmt: skip
        self.client = httpx2.AsyncClient(
            timeout=60, limits=httpx2.Limits(max_connections=CONCURRENCY + 4)
        )
        self.n = 0

    async def one(self) -> int:
        self.n += 1
        body = {"jsonrpc": "2.0", "id": self.n, "method": "tools/call",
                "params": {"name": self.tool, "arguments": {"text": f"t{self.n}"}, "_meta": ENVELOPE}}  # fmt: skip
        began = time.perf_counter_ns()
        try:
            response = await self.client.post(self.url, json=body, headers=self.headers)
        except (httpx2.ReadError, httpx2.RemoteProtocolError):  # a kept-alive connection the
            began = time.perf_counter_ns()  # server closed while idle (5 s): once more, fresh
            response = await self.client.post(self.url, json=body, headers=self.headers)
        took = time.perf_counter_ns() - began
        answer: dict[str, Any] = response.json()
        result = answer.get("result") or {}
        if response.status_code != 200 or result.get("isError") or "echo" not in str(result):
            raise RuntimeError(f"{self.url}: {response.status_code} {answer}")
        return took

    async def sequential(self, n: int) -> list[int]:
        return [await self.one() for _ in range(n)]

    async def saturate(self, n: int) -> tuple[list[int], int]:
        left = n
        samples: list[int] = []

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                samples.append(await self.one())

        began = time.perf_counter_ns()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return samples, time.perf_counter_ns() - began

    async def close(self) -> None:
        await self.client.aclose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median(values: list[float]) -> float:
    return statistics.median(values)


async def collect(quick: bool) -> Report:
    rounds = 3
    n_seq = scaled(quick, 1_000, 150)
    n_sat = scaled(quick, 4_000, 600)
    report = Report(
        "mcp", "Governed tools/call through the MCP gateway vs the upstream directly", quick
    )
    report.params.update(rounds=rounds, sequential=n_seq, saturation=n_sat, concurrency=CONCURRENCY)
    with tempfile.TemporaryDirectory(prefix="steward-bench-mcp-") as name:
        tmp = Path(name)
        procs = Processes(tmp)
        try:
            procs.start_upstream()
            gateway = procs.start_gateway()
            direct, governed = Load(procs.upstream), Load(procs.gateway, procs.token)
            for load in (direct, governed):  # warm both (imports, first run, pools)
                await load.sequential(scaled(quick, 200, 30))
                await load.saturate(scaled(quick, 400, 60))
            seq: dict[str, list[int]] = {"direct": [], "governed": []}
            p: dict[str, dict[str, list[float]]] = {k: {"p50": [], "p95": [], "p99": [], "rate": []}
                                                    for k in seq}  # fmt: skip
            sat: dict[str, list[int]] = {"direct": [], "governed": []}
            upstream_pid = procs.running[0].pid
            cpu: dict[str, list[float]] = {"upstream": [], "gateway": []}
            wall: dict[str, int] = {"direct": 0, "governed": 0}
            for _ in range(rounds):
                for key, load in (("direct", direct), ("governed", governed)):
                    samples = await load.sequential(n_seq)
                    seq[key].extend(samples)
                    m = Measurement(key, key, samples)
                    f = m.figures()
                    for pct in ("p50", "p95", "p99"):
                        p[key][pct].append(f[f"{pct}_us"] / 1000.0)
                    before = (cpu_seconds(upstream_pid), cpu_seconds(gateway.pid))
                    s_samples, s_wall = await load.saturate(n_sat)
                    if key == "governed":  # CPU per governed call: the upstream's and the gateway's
                        cpu["upstream"].append(
                            (cpu_seconds(upstream_pid) - before[0]) / n_sat * 1e6
                        )
                        cpu["gateway"].append((cpu_seconds(gateway.pid) - before[1]) / n_sat * 1e6)
                    sat[key].extend(s_samples)
                    wall[key] += s_wall
                    p[key]["rate"].append(n_sat / (s_wall / 1e9))
            for key, label in (("direct", "upstream MCP tool called directly"),
                               ("governed", "the same tool through the governed gateway")):  # fmt: skip
                report.add(Measurement(f"{key}_1", f"{label}, 1 in flight", seq[key]))
                report.add(Measurement(f"{key}_sat", f"{label}, {CONCURRENCY} in flight",
                                       sat[key], wall_ns=wall[key]))  # fmt: skip
            for pct in ("p50", "p95", "p99"):
                added = [g - d for g, d in zip(p["governed"][pct], p["direct"][pct], strict=True)]
                target = "≤ 2 ms" if pct == "p50" else ""
                ok = _median(added) <= 2.0 if pct == "p50" else None
                report.figure(f"added_{pct}", f"added {pct}, 1 in flight (median of {rounds})",
                              _median(added), "ms", target, ok)  # fmt: skip
            for key in ("direct", "governed"):
                rate = _median(p[key]["rate"])
                target = "≥ 1000" if key == "governed" else ""
                report.figure(f"{key}_calls_per_s", f"{key} calls/s at saturation (median of {rounds})",
                              rate, "call/s", target, rate >= 1000 if key == "governed" else None)  # fmt: skip
            report.figure("upstream_cpu", f"upstream process CPU per call (median of {rounds})",
                          _median(cpu["upstream"]), "µs")  # fmt: skip
            gw_cpu = _median(cpu["gateway"])
            report.figure("gateway_cpu", f"gateway process CPU per governed call (median of {rounds})",
                          gw_cpu, "µs")  # fmt: skip
            report.figure("gateway_cpu_bound", "gateway calls/s one core could serve (1e6 / CPU per call)",
                          1e6 / gw_cpu if gw_cpu else 0.0, "call/s")  # fmt: skip
            await direct.close()
            await governed.close()
            # where the gateway's CPU goes: the same governed call without the upstream hop
            local = Load(procs.gateway, procs.token, tool="echo_local")
            await local.saturate(scaled(quick, 400, 60))
            per: list[float] = []
            for _ in range(rounds):
                spent = cpu_seconds(gateway.pid)
                await local.saturate(n_sat)
                per.append((cpu_seconds(gateway.pid) - spent) / n_sat * 1e6)
            await local.close()
            report.figure("gateway_cpu_local", "gateway CPU per governed call of an in-process "
                          f"tool (no upstream hop; median of {rounds})", _median(per), "µs")  # fmt: skip
            if PROFILE:
                procs.stop(gateway)
                out = tmp / "gateway.txt"
                gateway = procs.start_gateway(profile=out)
                local = Load(procs.gateway, procs.token, tool="echo_local")
                await local.saturate(n_sat)
                await local.close()
                procs.stop(gateway, signal.SIGINT)
                print(out.read_text()[:15000], file=sys.stderr)
        finally:
            procs.close()
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
