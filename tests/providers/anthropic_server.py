"""A loopback stand-in for the Anthropic Messages API: POST /v1/messages in the real wire
format (JSON messages, and server-sent event streams when the request says `"stream": true`).

Scripted with a queue of behaviours, one per request, and records every request it gets.
Standard library only, so benchmarks can reuse it:

    with AnthropicServer() as server:
        server.reply("Hello")                                # JSON, or SSE if asked to stream
        server.reply(tool_calls=[("lookup", {"id": 7})])     # tool_use turn
        server.status(429, retry_after=7)                    # an error response
        model = AnthropicModel("claude-x", base_url=server.url, api_key="sk-test")
        ...
        server.requests[0].body["messages"], server.requests[0].headers["anthropic-version"]
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ToolUse = tuple[str, dict[str, Any]]  # (name, input)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True)
class Turn:
    """What the scripted model says: text, tool calls, stop reason and usage."""

    text: str = ""
    tool_calls: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (id, name, input)
    stop_reason: str = "end_turn"
    usage: dict[str, int] | None = None
    text_pieces: int = 3

    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": self.text}] if self.text else []
        blocks += [
            {"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in self.tool_calls
        ]
        return blocks

    def full_usage(self) -> dict[str, int]:
        base = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0}  # fmt: skip
        return {**base, **(self.usage or {})}


Action = Callable[["_Handler", RecordedRequest], None]


def split(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` roughly equal parts (at least one part, possibly empty)."""
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class AnthropicServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>, served from a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Action] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._serve, name="anthropic-loopback", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pending(self) -> int:
        """Behaviours scripted but not yet used."""
        return len(self._queue)

    def start(self) -> AnthropicServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; ends hangs at once; waits at most `timeout` seconds."""
        self.stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> AnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def _next(self) -> Action | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _script(self, action: Action) -> None:
        with self._lock:
            self._queue.append(action)

    def turn(
        self,
        text: str = "",
        *,
        tool_calls: Iterable[ToolUse] = (),
        stop_reason: str | None = None,
        usage: dict[str, int] | None = None,
        text_pieces: int = 3,
    ) -> Turn:
        """A Turn with fresh tool_use ids (toolu_001, toolu_002, ...)."""
        calls = tuple((f"toolu_{next(self._ids):03d}", n, dict(a)) for n, a in tool_calls)
        reason = stop_reason or ("tool_use" if calls else "end_turn")
        return Turn(text, calls, reason, usage, text_pieces)

    # -- scripting: one call queues the behaviour for one request ------------------------

    def reply(self, text: str = "", **kw: Any) -> Turn:
        """Answer as JSON, or as an SSE stream when the request asks to stream."""
        turn = self.turn(text, **kw)
        self._script(lambda h, r: h.sse(turn, r) if r.stream else h.json_reply(turn, r))
        return turn

    def stream(self, text: str = "", **kw: Any) -> Turn:
        """Answer as an SSE stream whatever the request asked."""
        turn = self.turn(text, **kw)
        self._script(lambda h, r: h.sse(turn, r))
        return turn

    def status(
        self,
        code: int,
        *,
        retry_after: float | str | None = None,
        error_type: str | None = None,
        message: str = "scripted failure",
    ) -> None:
        """An HTTP error with the API's error body; `retry_after` sets Retry-After."""
        kind = error_type or ERROR_TYPES.get(code, "api_error")
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        self._script(lambda h, r: h.error_reply(code, kind, message, headers))

    def hang(self, seconds: float) -> None:
        """Say nothing for `seconds` (or until the server stops), then drop the connection."""
        self._script(lambda h, r: h.hang(seconds))

    def hang_mid_stream(self, seconds: float, text: str = "partial") -> None:
        """Start a stream, send some text, then stall."""
        turn = self.turn(text)
        self._script(lambda h, r: h.sse(turn, r, stop_after=4, then_hang=seconds))

    def malformed_tool_stream(
        self, name: str = "lookup", fragments: Sequence[str] = ('{"q": ', '"x", "n": ', "}")
    ) -> None:
        """A tool_use block whose input_json_delta fragments join to invalid JSON."""
        turn = self.turn(tool_calls=[(name, {})])
        self._script(lambda h, r: h.sse(turn, r, fragments=list(fragments)))

    def truncated_stream(self, text: str = "partial answer", *, clean: bool = False) -> None:
        """Stop before message_stop: drop the connection mid-body, or (clean=True) end the
        HTTP body properly but early."""
        turn = self.turn(text)
        self._script(lambda h, r: h.sse(turn, r, stop_after=4, clean_end=clean))

    def error_in_stream(
        self, error_type: str = "overloaded_error", message: str = "Overloaded", text: str = "pa"
    ) -> None:
        """A 200 stream that carries an `error` event after some text."""
        turn = self.turn(text)
        error = {"type": "error", "error": {"type": error_type, "message": message}}
        self._script(lambda h, r: h.sse(turn, r, stop_after=4, error=error))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Send each write at once: with Nagle's algorithm on, a response written in pieces
    # waits ~40 ms for the client's delayed ACK, which real servers don't do.
    disable_nagle_algorithm = True
    server: ThreadingHTTPServer

    @property
    def owner(self) -> AnthropicServer:
        owner: AnthropicServer = self.server.owner  # type: ignore[attr-defined]
        return owner

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsable": raw.decode("utf-8", "replace")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest("POST", self.path, headers, body)
        self.owner.requests.append(request)
        if self.path.split("?")[0] != "/v1/messages":
            self.error_reply(404, "not_found_error", f"no route {self.path}", {})
            return
        action = self.owner._next()
        if action is None:
            self.error_reply(500, "api_error", "loopback server: nothing scripted", {})
            return
        action(self, request)

    # -- wire formats --------------------------------------------------------------------

    def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_loopback_{len(self.owner.requests)}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def json_reply(self, turn: Turn, request: RecordedRequest) -> None:
        self._send(200, _message(turn, request, turn.content(), turn.stop_reason), {})

    def error_reply(self, code: int, kind: str, message: str, headers: dict[str, str]) -> None:
        self._send(code, {"type": "error", "error": {"type": kind, "message": message}}, headers)

    def hang(self, seconds: float) -> None:
        self.owner.stopping.wait(seconds)
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def sse(
        self,
        turn: Turn,
        request: RecordedRequest,
        *,
        fragments: list[str] | None = None,
        stop_after: int | None = None,
        clean_end: bool = False,
        error: dict[str, Any] | None = None,
        then_hang: float = 0.0,
    ) -> None:
        """The full event sequence for `turn`; or its first `stop_after` events followed by an
        error event, a stall, a clean early end or a dropped connection."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = _events(turn, request, fragments)
        if stop_after is not None:
            events = events[:stop_after]
        try:
            for kind, data in events:
                self._chunk(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
            if error is not None:
                self._chunk(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
            if then_hang:
                self.owner.stopping.wait(then_hang)
            if stop_after is None or error is not None or clean_end:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            else:
                self.close_connection = True  # no final chunk: the body is cut off
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _message(
    turn: Turn, request: RecordedRequest, content: list[dict[str, Any]], stop: str | None
) -> dict[str, Any]:
    usage = turn.full_usage()
    return {
        "id": f"msg_loopback_{len(request.body.get('messages', []))}",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model", "claude-loopback"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage if stop else {**usage, "output_tokens": 1},
    }


def _events(
    turn: Turn, request: RecordedRequest, fragments: list[str] | None
) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of a streamed message, in the API's order."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": _message(turn, request, [], None)}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(turn.content()):
        start = dict(block, text="") if block["type"] == "text" else dict(block, input={})
        out.append(("content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start}))  # fmt: skip
        if block["type"] == "text":
            deltas = [
                {"type": "text_delta", "text": p} for p in split(block["text"], turn.text_pieces)
            ]
        else:
            parts = fragments if fragments is not None else split(json.dumps(block["input"]), 3)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *parts]]
        out += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                for d in deltas]  # fmt: skip
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    usage = {"output_tokens": turn.full_usage()["output_tokens"]}
    delta = {"stop_reason": turn.stop_reason, "stop_sequence": None}
    out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out
