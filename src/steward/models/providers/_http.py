"""What the providers share: reading a key at start-up, and a server's Retry-After advice."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from steward.core.errors import ModelError


def api_key_from_env(variable: str, model: str) -> str:
    """The key in `variable`, read now so a missing key fails at start-up."""
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ModelError(
            f"environment variable {variable} is not set or empty: model {model!r} needs an API key "
            f"(for a local server that takes none, set {variable} to any placeholder)",
            code="model.auth",
        )
    return key


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
