"""ToolWorkers: one agent's bounded pool of daemon threads for synchronous tools."""

from __future__ import annotations

import threading
import time

from steward.gate.workers import ToolWorkers


def named_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"steward-tool-{name}"]


def test_never_more_threads_than_its_bound_and_queued_jobs_wait() -> None:
    workers = ToolWorkers(2, "bounded")
    hold = threading.Event()
    running: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> int:
        with lock:
            running.append(n)
            peak.append(len(running))
        hold.wait(5)
        with lock:
            running.remove(n)
        return n

    jobs = [workers.submit(job, {"n": n}) for n in range(6)]
    time.sleep(0.2)
    assert sum(j.running() for j in jobs) == 2 and len(named_threads("bounded")) == 2
    assert all(t.daemon for t in named_threads("bounded")), "a hung tool never holds exit"
    assert jobs[5].cancel(), "a queued job can be withdrawn"
    hold.set()
    assert [j.result(timeout=5) for j in jobs[:5]] == [0, 1, 2, 3, 4]
    assert max(peak) == 2 and jobs[5].cancelled()


def test_idle_threads_leave_and_come_back_when_needed() -> None:
    workers = ToolWorkers(3, "idle", idle_seconds=0.05)
    assert workers.submit(lambda: 1, {}).result(timeout=5) == 1
    deadline = time.monotonic() + 5
    while named_threads("idle"):
        assert time.monotonic() < deadline, "an idle worker never left"
        time.sleep(0.01)
    results = [workers.submit(lambda n=n: n, {}) for n in range(10)]
    assert [r.result(timeout=5) for r in results] == list(range(10))


def test_an_exception_reaches_the_caller() -> None:
    def broken() -> None:
        raise RuntimeError("downstream said no")

    failure = ToolWorkers(1, "broken").submit(broken, {}).exception(timeout=5)
    assert isinstance(failure, RuntimeError) and str(failure) == "downstream said no"
