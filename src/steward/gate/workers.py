"""The threads that run one agent's synchronous tools.

Each agent (runtime/agent.py: one per loaded agent version, kept by the server, a worker
or the sweeper across its runs; every gate built from it shares it) runs its synchronous
tools on a pool of its own, bounded by the spec's `limits.tool_workers`, never on the
event loop's default executor: the server reads its store through that one, and a tool
that hangs must not take it. A hung tool can hold only its own agent's workers; a call
that finds them all busy waits in the queue (the execute stage bounds the wait by the
call's timeout and withdraws it unstarted).

The threads are daemons, started as calls need them, and leave after a minute idle: a
thread cannot be stopped from outside, so one stuck in a tool never holds the process up
at exit (the journal settles a call cut short by exit as after a crash).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

IDLE_SECONDS = 60.0

_Job = tuple[Future[Any], Callable[..., Any], dict[str, Any]]


class ToolWorkers:
    def __init__(self, size: int, name: str, *, idle_seconds: float = IDLE_SECONDS) -> None:
        if size < 1:
            raise ValueError("a tool pool needs at least one worker")
        self.size = size
        self.name = name
        self._idle_seconds = idle_seconds
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the three counts
        self._threads = 0
        self._waiting = 0  # threads blocked on the queue
        self._queued = 0  # jobs in the queue no thread has taken yet

    def submit(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> Future[Any]:
        """Queue `function(**kwargs)`; a job cancelled before a worker takes it never runs."""
        job: Future[Any] = Future()
        with self._lock:
            self._jobs.put((job, function, kwargs))
            self._queued += 1
            if self._queued > self._waiting and self._threads < self.size:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"steward-tool-{self.name}", daemon=True
                ).start()
        return job

    def _work(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                job, function, kwargs = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if not self._queued:  # idle for long: leave (a new call starts another)
                        self._threads -= 1
                        return
                continue  # a job came in as the wait ended: take it
            with self._lock:
                self._waiting -= 1
                self._queued -= 1
            if job.set_running_or_notify_cancel():
                try:
                    job.set_result(function(**kwargs))
                except BaseException as exc:  # the caller's future carries it
                    job.set_exception(exc)
            del job, function, kwargs  # hold no result or arguments while idle
