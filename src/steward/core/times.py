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


_SPANS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, *, now: float, end: bool = False) -> float:
    """Unix seconds from what a person types for a range's bound: RFC 3339 with a zone,
    Unix seconds, a UTC date `2025-12-03` (its start; its end, the next midnight, when
    `end`), or a span back from `now` (`30m`, `24h`, `7d`). Raises ValueError."""
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in _SPANS:
        return now - int(value[:-1]) * _SPANS[value[-1]]
    if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
        try:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ValueError(f"{text!r} is not a date: expected YYYY-MM-DD") from None
        return day + 86400 if end else day
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: expected RFC 3339 like 2025-12-03T04:06:17Z, a date"
            " like 2025-12-03, Unix seconds, or a span back from now like 24h or 7d"
        ) from None
