"""The learned injection detector's model: logistic-regression weights over hashed
features (features.py), shipped in the package (security/data/injection.bin, one float32
per bucket, and injection.json: its sha256, bias and threshold). Loaded on first use,
checked against its hash, evaluated in pure Python.

Trained by benchmarks/train_injection.py; measured by benchmarks/bench_scanners.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from steward.security.injection.features import (
    BUCKETS,
    pair_bucket,
    window_bounds,
    word_buckets,
    word_spans,
    words_of,
)

DATA = Path(__file__).resolve().parent.parent / "data"
MODEL_BIN = DATA / "injection.bin"
MODEL_JSON = DATA / "injection.json"


class ModelIntegrityError(RuntimeError):
    """The weights file is not the one its header names (tampered with or truncated)."""


@dataclass(frozen=True, slots=True)
class Score:
    score: float  # probability-like, 0..1: the highest window's
    start: int = 0  # the highest window's characters in the text (when over the threshold)
    end: int = 0


class InjectionModel:
    def __init__(self, weights: Path = MODEL_BIN, header: Path = MODEL_JSON) -> None:
        meta = json.loads(header.read_text())
        blob = weights.read_bytes()
        digest = hashlib.sha256(blob).hexdigest()
        if digest != meta["sha256"] or meta["buckets"] != BUCKETS:
            raise ModelIntegrityError(f"{weights.name}: sha256 {digest} is not {meta['sha256']}")
        self._w = array("f")
        self._w.frombytes(blob)
        if sys.byteorder == "big":
            self._w.byteswap()
        self.sha256: str = digest
        self.bias = float(meta["bias"])
        self.threshold = float(meta["threshold"])
        self._word_cache: dict[str, tuple[int, float, int]] = {}

    def _word(self, word: str) -> tuple[int, float, int]:
        cached = self._word_cache.get(word)
        if cached is None:
            key, own = word_buckets(word)
            w = self._w
            cached = (key, sum(w[b] for b in own), len(own) + 1)
            if len(self._word_cache) < 1 << 16:
                self._word_cache[word] = cached
        return cached

    def score(self, text: str) -> Score:
        """The score of text's most instruction-like window, and where that window is."""
        words = words_of(text)
        if not words:
            return Score(0.0)
        w = self._w
        sums = [0.0]
        counts = [0]
        total, count, previous = 0.0, 0, 0
        for word in words:
            key, weight, n = self._word(word)
            total += weight + w[pair_bucket(previous, key)]
            count += n
            sums.append(total)
            counts.append(count)
            previous = key
        best, best_window = -math.inf, (0, len(words))
        for first, last in window_bounds(len(words)):
            logit = (sums[last] - sums[first]) / math.sqrt(counts[last] - counts[first])
            if logit > best:
                best, best_window = logit, (first, last)
        probability = 1 / (1 + math.exp(-(best + self.bias)))
        if probability <= self.threshold:  # not a finding: where it was is not needed
            return Score(probability)
        spans = word_spans(text)
        return Score(probability, spans[best_window[0]][0], spans[best_window[1] - 1][1])


_lock = Lock()
_model: InjectionModel | None = None


def shipped_model() -> InjectionModel:
    """The packaged model, loaded (and hash-checked) once, on first use."""
    global _model
    with _lock:
        if _model is None:
            _model = InjectionModel()
        return _model
