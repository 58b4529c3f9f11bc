"""Timestamps for people and other programs: RFC 3339 in UTC with a `Z`, to the
millisecond, everywhere steward shows or exports a time (API bodies, the audit export,
JSON logs, the CLI's tables and --json). Stored times stay Unix seconds (floats)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(ts: float) -> str:
    """`1764734777.5` → `2025-12-03T04:06:17.500Z`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def rfc3339_or_none(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def parse_time(text: str) -> float:
    """Unix seconds from an RFC 3339 time (a zone is required: `Z` or `±HH:MM`) or from a
    number of Unix seconds. Raises ValueError naming what was expected."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: expected RFC 3339 like 2025-12-03T04:06:17Z, or Unix seconds"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no zone: add Z or an offset like +00:00")
    return parsed.timestamp()
