"""Rendering helpers shared by the CLI commands."""

from __future__ import annotations

import json
import time
from typing import Any

STATUS_STYLE = {
    "succeeded": "green",
    "waiting": "yellow",
    "running": "blue",
    "queued": "blue",
    "escalated": "magenta",
    "failed": "red",
    "cancelled": "dim",
    "pending": "yellow",
    "approved": "green",
    "rejected": "red",
    "expired": "dim",
}


def status(value: str) -> str:
    style = STATUS_STYLE.get(value, "white")
    return f"[{style}]{value}[/]"


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def compact(value: Any, width: int = 80) -> str:
    return short(json.dumps(value, sort_keys=True, default=str), width)
