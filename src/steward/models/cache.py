"""Exact-match response cache.

The key covers everything that shapes an answer: agent version, model, role, messages,
tools and settings. Entries expire after a TTL; the oldest go first when full. The runner
never consults it for a turn that follows a side effect in the same run: the world the
model would see has changed, even if the conversation text has not.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

import msgspec

from steward.core.messages import ModelResponse
from steward.models.protocol import ModelRequest

_encoder = msgspec.json.Encoder(order="sorted")


def cache_key(scope: str, model: str, request: ModelRequest) -> str:
    body = _encoder.encode({"scope": scope, "model": model, "request": request})
    return hashlib.sha256(body).hexdigest()


class ResponseCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[float, ModelResponse]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, now: float | None = None) -> ModelResponse | None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] <= moment:
                if found is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[1]

    def put(self, key: str, response: ModelResponse, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            self._entries[key] = (moment + self.ttl, response)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
