"""Property-based: schemathesis generates requests from our own OpenAPI schema, valid and
malformed, for every operation, sent with an admin key to a real server. However odd the
request, the answer is never a 5xx, and every error is the JSON error shape."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from steward.cli.serve import DEMO_SPEC
from steward.security.keys import Role
from steward.server import create_app, load_agents
from steward.store import Database
from steward.store.keys import create_key

SCHEMA = schemathesis.openapi.from_dict(create_app("sqlite://").openapi())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    base: Path = tmp_path_factory.mktemp("fuzz")
    patch = pytest.MonkeyPatch()
    patch.setenv("STEWARD_DEMO_SYSTEMS", str(base / "systems.db"))
    patch.setenv("STEWARD_TELEMETRY", "off")
    url = f"sqlite:///{base / 'steward.db'}"
    db = Database.open(url)
    token = create_key(db, name="fuzz", role=Role.ADMIN, by="test")[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(url, load_agents([DEMO_SPEC]), grace_seconds=1.0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        patch.undo()
        db.close()


EXAMPLES = int(os.environ.get("STEWARD_FUZZ_EXAMPLES", "15"))


@SCHEMA.exclude(path_regex=r".*/stream$").parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure reproduces
)
def test_no_request_gets_a_server_error(case: Any, live: tuple[str, dict[str, str]]) -> None:
    base_url, auth = live
    response = case.call(base_url=base_url, headers=auth, timeout=10)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], response.text
