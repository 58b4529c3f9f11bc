"""A loopback HTTP receiver for alert webhooks: answers each POST with the next code of
`answers` (200 when none is left) and keeps the JSON bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest


class Receiver(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        code = self.answers.pop(0) if self.answers else 200
        type(self).bodies.append(body)
        self.send_response(code)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@dataclass
class Loopback:
    url: str
    handler: type[Receiver]
    server: ThreadingHTTPServer = field(repr=False)


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    handler = type("Handler", (Receiver,), {"answers": [503], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Loopback(f"http://127.0.0.1:{server.server_address[1]}/hook", handler, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
