"""A loopback server speaking the OpenAI Chat Completions wire protocol (stdlib only).

Scripted per test: each POST /v1/chat/completions plays the next queued behaviour
(`reply`, `stream`, `status`, `hang`, `raw`), or `fallback` when the queue is empty.
Every request is recorded (method, path, lower-cased headers, parsed JSON body).

    with OpenAIServer() as server:
        server.reply("hi", usage=usage(12, 3, cached=8))
        server.stream(["Hel", "lo"], tool_calls=[("lookup", {"id": 7})], split=3)
        server.status(429, headers={"Retry-After": "2"})
        server.hang(5)
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

AUTO = "auto"  # finish_reason: "tool_calls" when there are tool calls, else "stop"
ToolCallSpec = tuple[str, "dict[str, Any] | str"]  # (name, arguments: dict, or raw JSON text)


def usage(prompt: int = 10, completion: int = 5, cached: int | None = None) -> dict[str, Any]:
    """A `usage` object; `cached` adds prompt_tokens_details.cached_tokens."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    return out


@dataclass(frozen=True)
class Reply:
    """A complete answer: JSON, or the same answer as a stream when the request streams."""

    text: str | None = ""
    tool_calls: Sequence[ToolCallSpec] = ()
    usage: dict[str, Any] | None = field(default_factory=usage)
    finish_reason: str | None = AUTO
    delay: float = 0.0


@dataclass(frozen=True)
class Stream:
    """SSE: role chunk, one content delta per text chunk, each tool call as a head (index,
    id, name) then its arguments in `split` fragments (`interleave` alternates calls),
    a finish chunk (none if finish_reason is None), a usage chunk when the request asked
    for it, then [DONE] (unless done=False). `truncate_after=n` closes the connection
    abruptly after n events. `pause` sleeps between events. `joined_when_asked`: a
    request that does not stream gets the whole text as one completion instead."""

    chunks: Sequence[str] = ()
    tool_calls: Sequence[ToolCallSpec] = ()
    usage: dict[str, Any] | None = field(default_factory=usage)
    finish_reason: str | None = AUTO
    split: int = 3
    interleave: bool = False
    pause: float = 0.0
    truncate_after: int | None = None
    done: bool = True
    joined_when_asked: bool = False  # a request that does not stream gets the whole answer


@dataclass(frozen=True)
class Status:
    """An error status with an OpenAI-style error body and optional headers."""

    code: int
    message: str = "scripted error"
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str = "server_error"
    error_code: str | None = None


@dataclass(frozen=True)
class Hang:
    """Reads the request, waits `seconds` (cut short by stop(), or by `release` when
    set), then plays `then` or closes the connection without answering."""

    seconds: float
    then: Behaviour | None = None
    release: threading.Event | None = None


@dataclass(frozen=True)
class Raw:
    """Exact bytes with a status and content type (malformed bodies, hand-made SSE)."""

    status: int
    body: bytes
    content_type: str = "application/json"


Behaviour = Reply | Stream | Status | Hang | Raw
_B = TypeVar("_B", Reply, Stream, Status, Hang, Raw)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class OpenAIServer:
    def __init__(self, *, fallback: Behaviour | None = None) -> None:
        self.fallback = fallback
        self.requests: list[Recorded] = []
        self.unscripted = 0  # requests that found no behaviour (answered 500)
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()  # releases hangs and pauses
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting --------------------------------------------------------------------
    def enqueue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def reply(self, text: str | None = "", **kw: Any) -> Reply:
        return self._add(Reply(text, **kw))

    def stream(self, chunks: Sequence[str] = (), **kw: Any) -> Stream:
        return self._add(Stream(chunks, **kw))

    def status(self, code: int, **kw: Any) -> Status:
        return self._add(Status(code, **kw))

    def hang(
        self, seconds: float, then: Behaviour | None = None, release: threading.Event | None = None
    ) -> Hang:
        return self._add(Hang(seconds, then, release))

    def raw(self, status: int, body: bytes, content_type: str = "application/json") -> Raw:
        return self._add(Raw(status, body, content_type))

    def _add(self, behaviour: _B) -> _B:
        self.enqueue(behaviour)
        return behaviour

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next(self) -> Behaviour | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.fallback is None:
                self.unscripted += 1
            return self.fallback


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: OpenAIServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-stream (a caller that stops at the first token)
        is normal here; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Send each write at once: with Nagle's algorithm on, a response written in pieces
    # waits ~40 ms for the client's delayed ACK, which real servers don't do.
    disable_nagle_algorithm = True
    timeout = 30  # idle keep-alive connections end on their own
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner._lock:
            owner.requests.append(Recorded("POST", self.path, headers, body))
        if self.path.split("?")[0].rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._play(
                Status(404, f"no route {self.path}", error_type="invalid_request_error"), body
            )
            return
        behaviour = owner._next()
        if behaviour is None:
            behaviour = Status(500, "openai_server: no scripted behaviour left")
        try:
            self._play(behaviour, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _play(self, b: Behaviour, body: Any) -> None:
        req = body if isinstance(body, dict) else {}
        model = str(req.get("model", "gpt-test"))
        stopping = self.server.owner._stopping
        while isinstance(b, Hang):
            deadline = time.monotonic() + b.seconds
            while time.monotonic() < deadline and not stopping.is_set():
                if b.release is not None and b.release.is_set():
                    break
                stopping.wait(min(0.02, b.seconds) if b.release is not None else b.seconds)
            if b.then is None:
                self.close_connection = True
                return
            b = b.then
        if isinstance(b, Reply):
            if b.delay:
                stopping.wait(b.delay)
            if req.get("stream"):
                chunks = [b.text] if b.text else []
                b = Stream(chunks, b.tool_calls, b.usage, b.finish_reason, split=1)
            else:
                self._send(200, json.dumps(completion(b, model)).encode())
                return
        if isinstance(b, Stream) and not req.get("stream") and b.joined_when_asked:
            whole = Reply("".join(b.chunks), b.tool_calls, b.usage, b.finish_reason)
            self._send(200, json.dumps(completion(whole, model)).encode())
            return
        if isinstance(b, Stream):
            include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
            self._stream(stream_events(b, model, include_usage), b, stopping)
        elif isinstance(b, Status):
            error = {
                "message": b.message,
                "type": b.error_type,
                "param": None,
                "code": b.error_code,
            }
            self._send(b.code, json.dumps({"error": error}).encode(), headers=b.headers)
        else:
            self._send(b.status, b.body, content_type=b.content_type)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{len(self.server.owner.requests)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _stream(self, events: list[str], b: Stream, stopping: threading.Event) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, event in enumerate(events):
            if b.truncate_after is not None and i >= b.truncate_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # no final chunk: cut mid-body
                return
            if i and b.pause:
                stopping.wait(b.pause)
            data = f"data: {event}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- wire format --------------------------------------------------------------------------


def _arguments(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _finish(reason: str | None, tool_calls: Sequence[ToolCallSpec]) -> str | None:
    if reason == AUTO:
        return "tool_calls" if tool_calls else "stop"
    return reason


def completion(b: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": b.text, "refusal": None}
    if b.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": _arguments(args)},
            }
            for i, (name, args) in enumerate(b.tool_calls)
        ]
    out: dict[str, Any] = {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(b.finish_reason, b.tool_calls),
            }
        ],
        "system_fingerprint": "fp_loopback",
    }
    if b.usage is not None:
        out["usage"] = b.usage
    return out


def split_text(text: str, parts: int) -> list[str]:
    """`text` in `parts` non-empty pieces of near-equal size (fewer if it is shorter)."""
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def stream_events(b: Stream, model: str, include_usage: bool) -> list[str]:
    """The `data:` payloads of a streamed completion, in order."""
    cid, created = f"chatcmpl-{time.monotonic_ns()}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_loopback",
            "choices": [choice],
        }
        if include_usage:
            body["usage"] = None
        return json.dumps(body)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in b.chunks]
    per_call: list[list[str]] = []
    for i, (name, args) in enumerate(b.tool_calls):
        head = {"index": i, "id": f"call_{i}", "type": "function"}
        head["function"] = {"name": name, "arguments": ""}
        frags = [
            {"index": i, "function": {"arguments": f}}
            for f in split_text(_arguments(args), b.split)
        ]
        per_call.append([chunk({"tool_calls": [d]}) for d in (head, *frags)])
    if b.interleave:
        longest = max((len(c) for c in per_call), default=0)
        events += [c[k] for k in range(longest) for c in per_call if k < len(c)]
    else:
        events += [e for c in per_call for e in c]
    finish = _finish(b.finish_reason, b.tool_calls)
    if finish is not None:
        events.append(chunk({}, finish))
    if include_usage and b.usage is not None:
        tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        events.append(json.dumps({**tail, "choices": [], "usage": b.usage}))
    if b.done:
        events.append("[DONE]")
    return events
