"""Streamed tokens across processes, over PostgreSQL LISTEN/NOTIFY: the process that
drives a run (a `steward serve` replica, a `steward worker`) publishes the model's text
chunks; a server whose Server-Sent Events clients follow that run hears them and hands
them to its followers. The journal follows runs driven elsewhere (store/watch.py); this
carries what the journal does not hold as it streams.

Tokens are live data, best effort (the journal keeps each whole model turn): publishing
is a dictionary look-up and an append on the run's path; a thread of the relay sends
what piled up meanwhile (at most one send per BATCH_SECONDS), in one transaction
(delivered in order), and a
fault of the relay drops chunks and counts them (`counts`), never fails or slows a run.

Two channels:
- `steward_follows`: a server announces the runs its followers follow (at the first
  follower of a run, and every ANNOUNCE_SECONDS while any is followed). A driving
  process keeps each announced run for INTEREST_SECONDS and publishes only the chunks
  of runs someone follows: nobody following, nothing is sent. A driving process that
  (re)connects asks (`?`), and every server announces again at once.
- `steward_tokens`: one notification per chunk (consecutive chunks of one run merged),
  payload JSON {o: origin, r: run id, s: sequence, t: text}, under PostgreSQL's 8000
  byte limit (a longer text is split). A listener drops its own process's chunks (its
  followers had them in process) and any sequence not above the last it took from that
  origin, so a follower never sees a chunk twice or out of order.

Each side has a connection of its own, reconnecting after a fault with the store's
backoff. SQLite (one server per database): no relay, tokens stay in process.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from steward.core.backoff import backoff_delay
from steward.store.database import Database
from steward.store.transient import BACKOFF_BASE, BACKOFF_CAP

log = logging.getLogger("steward.store.token_relay")

TOKENS = "steward_tokens"
FOLLOWS = "steward_follows"
ASK = "?"
PAYLOAD_BYTES = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
ANNOUNCE_SECONDS = 2.0
INTEREST_SECONDS = 3 * ANNOUNCE_SECONDS  # an announcement missed or two is no gap
QUEUE_LIMIT = 10_000  # chunks waiting to be sent; past it they are dropped
LISTEN_SECONDS = 0.25  # how long the listener waits for notifications between checks
BATCH_SECONDS = 0.02  # at most one send per this: what streams meanwhile goes in one
_NOTIFY = "SELECT pg_notify(%s, %s)"

TokenHandler = Callable[[str, str], None]  # (run id, text), on the relay's listener thread


class TokenRelay:
    """One per process. `on_tokens`: this process has followers; chunks other processes
    publish for runs it follows are handed to it. `drives`: this process drives runs;
    `publish` sends the chunks of runs someone follows. `start()` starts its threads."""

    def __init__(
        self, db: Database, *, on_tokens: TokenHandler | None = None, drives: bool = True
    ) -> None:
        self.db = db
        self.active = db.dialect == "postgresql"
        self.on_tokens = on_tokens
        self.drives = drives
        self.origin = uuid.uuid4().hex[:12]
        self.counts: collections.Counter[str] = collections.Counter()  # sent, dropped, heard
        self._interest: dict[str, float] = {}  # run id -> monotonic time its interest ends
        self._followed: dict[str, int] = {}  # run id -> followers in this process
        self._announced: dict[str, threading.Event] = {}
        self._queue: collections.deque[tuple[str, str]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._announce_all = threading.Event()
        self._asking = threading.Event()  # the listener (re)connected: ask who follows
        self._last: dict[str, int] = {}  # origin -> the last sequence taken from it
        self._sequence = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- the driving side ----------------------------------------------------------------

    def followed_elsewhere(self, run_id: str) -> bool:
        until = self._interest.get(run_id)
        return until is not None and until > time.monotonic()

    def publish(self, run_id: str, text: str) -> None:
        """Send a chunk of the run's text to its followers in other processes, if any
        (never raises, never waits)."""
        if not self.active or not text or not self.followed_elsewhere(run_id):
            return
        if len(self._queue) >= QUEUE_LIMIT:
            self.counts["dropped"] += 1
            return
        self._queue.append((run_id, text))
        self._wake.set()

    def sink(self, run_id: str) -> Callable[[str], None]:
        """The runner's `on_text` for a run this process drives."""
        return lambda text: self.publish(run_id, text)

    # -- the following side --------------------------------------------------------------

    def follow(self, run_id: str) -> threading.Event:
        """This process has one more follower of the run; the event is set once the
        drivers of runs were told (at once when there is no relay)."""
        with self._lock:
            count = self._followed.get(run_id, 0)
            self._followed[run_id] = count + 1
            told = self._announced.get(run_id)
            if told is None:
                told = self._announced[run_id] = threading.Event()
        if not self.active or self.on_tokens is None:
            told.set()
        elif count == 0:
            self._wake.set()
        return told

    def unfollow(self, run_id: str) -> None:
        with self._lock:
            count = self._followed.get(run_id, 0) - 1
            if count > 0:
                self._followed[run_id] = count
            else:
                self._followed.pop(run_id, None)
                self._announced.pop(run_id, None)

    # -- threads ------------------------------------------------------------------------

    def start(self) -> TokenRelay:
        if self.active and not self._threads:
            for name, target in (("listen", self._listen), ("send", self._send)):
                thread = threading.Thread(target=target, name=f"steward-tokens-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _connect(self) -> Any:
        pooled = self.db.writer.raw_connection()
        pooled.detach()  # a session of its own: LISTEN stays with it, never with the pool
        driver: Any = pooled.dbapi_connection
        driver.autocommit = True
        return driver

    def _serve(self, name: str, work: Callable[[Any], None]) -> None:
        """`work` on a connection of its own until the relay stops: on a new one after
        each fault, with the store's backoff."""
        attempt = 0
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._connect()
                attempt = 0
                work(connection)
            except Exception as exc:  # best effort: a fault is logged, counted, retried
                self.counts[f"{name}_faults"] += 1
                log.warning("token relay (%s): %r; reconnecting", name, exc)
                attempt += 1
                self._stopping.wait(backoff_delay(attempt, BACKOFF_BASE, BACKOFF_CAP))
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()

    def _listen(self) -> None:
        self._serve("listen", self._listening)

    def _listening(self, connection: Any) -> None:
        if self.on_tokens is not None:
            connection.execute(f"LISTEN {TOKENS}")
        if self.drives:  # interest announced while this was away: ask again
            connection.execute(f"LISTEN {FOLLOWS}")
            self._asking.set()
            self._wake.set()
        while not self._stopping.is_set():
            for note in connection.notifies(timeout=LISTEN_SECONDS):
                self._heard(note.channel, note.payload)

    def _heard(self, channel: str, payload: str) -> None:
        if channel == FOLLOWS:
            origin, _, runs = payload.partition(" ")
            if origin == self.origin:
                return
            if runs == ASK:
                self._announce_all.set()
                self._wake.set()
                return
            now = time.monotonic()
            if len(self._interest) > 1000:  # forget runs nobody follows any longer
                for run_id in [r for r, t in self._interest.items() if t <= now]:
                    self._interest.pop(run_id, None)
            for run_id in runs.split():
                self._interest[run_id] = now + INTEREST_SECONDS
            return
        try:
            chunk = json.loads(payload)
            origin, run_id, sequence, text = chunk["o"], chunk["r"], int(chunk["s"]), chunk["t"]
        except (ValueError, KeyError, TypeError):
            self.counts["malformed"] += 1
            return
        if origin == self.origin or sequence <= self._last.get(origin, -1):
            return  # this process's own (its followers had it), or seen already
        self._last[origin] = sequence
        if run_id in self._followed and self.on_tokens is not None:
            self.counts["heard"] += 1
            self.on_tokens(run_id, text)

    def _send(self) -> None:
        self._serve("send", self._sending)

    def _sending(self, connection: Any) -> None:
        announced_at = sent_at = 0.0
        while not self._stopping.is_set():
            self._wake.wait(ANNOUNCE_SECONDS)
            lull = sent_at + BATCH_SECONDS - time.monotonic()
            if lull > 0:  # chunks come in bursts: one round trip for the burst
                self._stopping.wait(lull)
            self._wake.clear()
            notes: list[tuple[str, str]] = []
            everything = (
                self._announce_all.is_set() or time.monotonic() - announced_at >= ANNOUNCE_SECONDS
            )
            if everything:
                self._announce_all.clear()
                announced_at = time.monotonic()
            groups, told = self._announcements(everything)
            notes += [(FOLLOWS, f"{self.origin} {' '.join(runs)}") for runs in groups]
            if self._asking.is_set():
                self._asking.clear()
                notes.append((FOLLOWS, f"{self.origin} {ASK}"))
            taken = self._drain()
            notes += [(TOKENS, payload) for payload in self._payloads(taken)]
            if not notes:
                continue
            sent_at = time.monotonic()
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    cursor.executemany(_NOTIFY, notes)
            except Exception:
                self.counts["dropped"] += len(taken)
                raise
            self.counts["sent"] += len(taken)
            for event in told:
                event.set()

    def _announcements(self, everything: bool) -> tuple[list[list[str]], list[threading.Event]]:
        """The runs to announce (in groups under the payload limit) and the events to set
        once they were: every followed run when `everything`, else those new since."""
        if self.on_tokens is None:
            return [], []
        with self._lock:
            pending = [(r, e) for r, e in self._announced.items() if everything or not e.is_set()]
        groups: list[list[str]] = []
        size = PAYLOAD_BYTES
        for run_id, _ in pending:
            if size + len(run_id.encode()) + 1 > PAYLOAD_BYTES:
                groups.append([])
                size = len(self.origin)
            groups[-1].append(run_id)
            size += len(run_id.encode()) + 1
        return groups, [told for _, told in pending]

    def _drain(self) -> list[tuple[str, str]]:
        taken = []
        while self._queue:
            taken.append(self._queue.popleft())
        return taken

    def _payloads(self, taken: list[tuple[str, str]]) -> list[str]:
        """Consecutive chunks of one run merged, each payload under the limit."""
        merged: list[tuple[str, str]] = []
        for run_id, text in taken:
            if merged and merged[-1][0] == run_id:
                merged[-1] = (run_id, merged[-1][1] + text)
            else:
                merged.append((run_id, text))
        out = []
        for run_id, text in merged:
            for piece in self._pieces(run_id, text):
                self._sequence += 1
                out.append(self._encode(run_id, self._sequence, piece))
        return out

    def _pieces(self, run_id: str, text: str) -> list[str]:
        if len(self._encode(run_id, self._sequence + 1, text).encode()) <= PAYLOAD_BYTES:
            return [text]
        half = len(text) // 2
        return self._pieces(run_id, text[:half]) + self._pieces(run_id, text[half:])

    def _encode(self, run_id: str, sequence: int, text: str) -> str:
        chunk = {"o": self.origin, "r": run_id, "s": sequence, "t": text}
        return json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
