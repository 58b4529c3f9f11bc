"""The gateway's tests need the MCP SDK 2.x (the `mcp` extra); each module skips without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MCP_MISSING = "the gateway needs the MCP SDK 2.x: pip install 'steward-governance[mcp]'"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Any]:
    """A `steward gateway` process serving the test specs (tests/gateway/served.py)."""
    from .served import served_gateway

    yield from served_gateway(tmp_path)
