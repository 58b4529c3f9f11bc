"""Fault injection for crash tests: `STEWARD_CRASH_AT` kills the process with SIGKILL at
a crash point. `N` kills at the Nth crash point reached, `NAME` at the first one named
NAME, `NAME:N` at the Nth one named NAME (`tool.after:2`: after the second tool call
returned, before its result is recorded). Unset (always, in production) it costs one
comparison."""

from __future__ import annotations

import os
import signal


def _parse(value: str) -> tuple[str, int]:
    if not value:
        return "", 0
    name, _, count = value.rpartition(":") if ":" in value else ("", "", value)
    if not count.isdigit():  # a bare name
        return value, 1
    return name, int(count)


_name, _target = _parse(os.environ.get("STEWARD_CRASH_AT", "").strip())
_count = 0


def crashpoint(where: str) -> None:
    global _count
    if _target <= 0 or (_name and where != _name):
        return
    _count += 1
    if _count >= _target:
        os.kill(os.getpid(), signal.SIGKILL)
