"""Stopping the process is not ending a run.

A server that stops cancels the tasks still driving runs with `task.cancel(SHUTDOWN)`.
Nothing is recorded as failed or cancelled for them: what they recorded stays durable,
the run stays `running`, and a resume picks it up as it would after a crash.
"""

from __future__ import annotations

import asyncio

SHUTDOWN = "steward.shutdown"


def is_shutdown(exc: asyncio.CancelledError) -> bool:
    return bool(exc.args) and exc.args[0] == SHUTDOWN
