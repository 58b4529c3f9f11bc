"""Fault injection for crash tests: `STEWARD_CRASH_AT=N` kills the process with SIGKILL
at the Nth crash point reached. Unset (always, in production) it costs one comparison."""

from __future__ import annotations

import os
import signal

_target = int(os.environ.get("STEWARD_CRASH_AT", "0") or 0)
_count = 0


def crashpoint(_where: str) -> None:
    global _count
    if _target <= 0:
        return
    _count += 1
    if _count >= _target:
        os.kill(os.getpid(), signal.SIGKILL)
