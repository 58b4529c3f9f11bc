"""Plumbing the API routers share."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query, Request
from pydantic import BeforeValidator

from steward.core.times import parse_time
from steward.server.errors import ApiError
from steward.server.service import RunService


def _time_in(value: object) -> object:
    """A time in a query: RFC 3339 with a zone (as the API's bodies send them), or Unix
    seconds; anything else is a 422 naming the field and what was expected."""
    return parse_time(value) if isinstance(value, str) else value


# Bounds for numbers in queries: ids fit a signed 64-bit column; times are between 1970
# and 2100 (NaN and infinities fail these bounds).
MAX_ID = 2**63 - 1
EventId = Annotated[int, Query(ge=0, le=MAX_ID)]
Timestamp = Annotated[
    float | None,
    BeforeValidator(_time_in),
    Query(
        ge=0,
        le=4_102_444_800,
        description="RFC 3339 with a zone (2025-12-03T04:06:17Z) or Unix seconds.",
    ),
]


def service_of(request: Request) -> RunService:
    service: RunService = request.app.state.service
    return service


def encode_cursor(created_at: float, run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, run_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        return float(created), run_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422, "request.invalid", "query.cursor: not a cursor this API issued"
        ) from None
