"""Semantic response cache: a request that means the same as an earlier one gets its answer.

The text compared is the user's request (the last user message). Everything else that
shapes an answer (agent version, model, system prompt, tools, settings) goes into the
scope, as for the exact cache: entries are only ever compared within one scope. `get`
returns the most similar live entry whose cosine similarity is at least `threshold`.

The number guard. Embeddings place "Where is order 10234?" and "Where is order 10243?"
almost on top of each other (cosine ≈ 0.98 with all-MiniLM-L6-v2): a sentence embedding
barely encodes which digits were typed. So two texts whose numbers differ (order numbers,
amounts, dates, quantities) are never a hit, whatever their similarity. Numbers are runs of
digits, with thousands separators and trailing decimal zeros ignored ("$1,200.50" and
"1200.5" agree); they are compared as multisets, so a number present in one text and absent
from the other is a difference. Not guarded: numbers spelled out in words, and identifiers
without digits (names, e-mail addresses): keep the threshold high for agents whose answers
depend on those. benchmarks/bench_semantic_cache.py measures hit and false-hit rates with
and without the guard.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import msgspec
import numpy as np

from steward.core.messages import ModelResponse
from steward.models.embeddings import Embedder, Vectors
from steward.models.protocol import ModelRequest

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_encoder = msgspec.json.Encoder(order="sorted")
_MEMO = 64  # recently embedded texts, so put() after a missed get() does not embed again


def numbers_in(text: str) -> tuple[str, ...]:
    """The numbers in a text, normalised and sorted: "Refund $1,200.50 for 2 items" gives
    ("1200.5", "2")."""
    found = []
    for raw in _NUMBER.findall(text):
        whole, _, fraction = raw.replace(",", "").partition(".")
        fraction = fraction.rstrip("0")  # leading zeros stay: "007" may not be order "7"
        found.append(f"{whole}.{fraction}" if fraction else whole)
    return tuple(sorted(found))


def same_numbers(a: str, b: str) -> bool:
    return numbers_in(a) == numbers_in(b)


def request_text(request: ModelRequest) -> str | None:
    """The user's request: the last user message's content (None when there is none)."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return None


def semantic_scope(scope: str, model: str, request: ModelRequest) -> str:
    """A digest of everything in the request but the user's request text itself."""
    last = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=None)
    rest = tuple(m for i, m in enumerate(request.messages) if i != last)
    body = {
        "scope": scope,
        "model": model,
        "request": msgspec.structs.replace(request, messages=rest),
    }
    return hashlib.sha256(_encoder.encode(body)).hexdigest()


@dataclass(slots=True)
class _Entry:
    text: str
    vector: Vectors
    numbers: tuple[str, ...]
    expires: float
    response: ModelResponse


class _Scope:
    """One scope's entries, with their vectors stacked for one matrix-vector product."""

    __slots__ = ("entries", "ids", "matrix", "soonest")

    def __init__(self) -> None:
        self.entries: dict[int, _Entry] = {}
        self.ids: list[int] = []
        self.matrix: Vectors | None = None  # rebuilt on the next lookup after a change
        self.soonest = float("inf")  # the earliest expiry among the entries (or earlier)

    def stacked(self) -> tuple[list[int], Vectors]:
        if self.matrix is None:
            self.ids = list(self.entries)
            self.matrix = np.stack([self.entries[i].vector for i in self.ids])
        return self.ids, self.matrix


class SemanticCache:
    """Thread-safe. Entries expire after `ttl_seconds`; past `max_entries` (all scopes
    together) the least recently used go first. Embedding happens outside the lock."""

    def __init__(
        self,
        embedder: Embedder,
        threshold: float,
        ttl_seconds: float,
        max_entries: int = 10_000,
        *,
        number_guard: bool = True,
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.number_guard = number_guard
        self.hits = 0
        self.misses = 0
        self.guarded = 0  # lookups the number guard turned from a hit into a miss
        self._scopes: dict[str, _Scope] = {}
        self._order: OrderedDict[int, str] = OrderedDict()  # entry id -> scope, LRU first
        self._next = 0
        self._memo: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, scope: str, text: str, now: float | None = None
    ) -> tuple[ModelResponse, float] | None:
        """The best live entry in `scope` at or above the threshold, with its similarity."""
        vector = self._vector(text)
        numbers = numbers_in(text)
        moment = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._scopes.get(scope)
            if bucket is not None:
                self._expire(bucket, moment)
            if bucket is None or not bucket.entries:
                self.misses += 1
                return None
            ids, matrix = bucket.stacked()
            similarities = matrix @ vector
            candidates = np.flatnonzero(similarities >= self.threshold)
            guarded = False
            for index in candidates[np.argsort(-similarities[candidates])]:
                similarity = float(similarities[index])
                entry = bucket.entries[ids[index]]
                if self.number_guard and entry.numbers != numbers:
                    guarded = True
                    continue
                self._order.move_to_end(ids[index])
                self.hits += 1
                return entry.response, min(similarity, 1.0)
            self.misses += 1
            self.guarded += guarded
            return None

    def put(self, scope: str, text: str, response: ModelResponse, now: float | None = None) -> None:
        vector = self._vector(text)
        moment = time.monotonic() if now is None else now
        entry = _Entry(text, vector, numbers_in(text), moment + self.ttl, response)
        with self._lock:
            known = self._scopes.get(scope)
            for existing, other in list(known.entries.items()) if known is not None else ():
                if other.text == text:  # the same request again: replace, not duplicate
                    self._drop(existing)
            bucket = self._scopes.setdefault(scope, _Scope())
            self._next += 1
            bucket.entries[self._next] = entry
            bucket.matrix = None
            bucket.soonest = min(bucket.soonest, entry.expires)
            self._order[self._next] = scope
            while len(self._order) > self.max_entries:
                self._drop(next(iter(self._order)))

    def __len__(self) -> int:
        return len(self._order)

    def _vector(self, text: str) -> Vectors:
        with self._lock:
            found = self._memo.get(text)
            if found is not None:
                self._memo.move_to_end(text)
                return found
        vector: Vectors = self.embedder.embed([text])[0]
        with self._lock:
            self._memo[text] = vector
            while len(self._memo) > _MEMO:
                self._memo.popitem(last=False)
        return vector

    def _expire(self, bucket: _Scope, moment: float) -> None:
        if bucket.soonest > moment:
            return
        for key in [k for k, e in bucket.entries.items() if e.expires <= moment]:
            self._drop(key)
        bucket.soonest = min((e.expires for e in bucket.entries.values()), default=float("inf"))

    def _drop(self, key: int) -> None:
        scope = self._order.pop(key)
        bucket = self._scopes[scope]
        del bucket.entries[key]
        bucket.matrix = None
        if not bucket.entries:
            del self._scopes[scope]
