"""Features of the learned injection detector, in pure Python (no NumPy at run time).

A text is a sequence of lower-cased words (and punctuation marks and line breaks). Each word position
contributes hashed features: the word, the pair it forms with the word before, and the
4-letter pieces of a longer word (so a misspelt or spaced-out instruction shares features
with its plain form). A window of words is the sum of its positions' features divided by
the square root of their number, so a window's score is a difference of running sums:
scoring is linear in the text's length. Training (benchmarks/train_injection.py) calls
these same functions, so the model reads at run time exactly what it learned from.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

BUCKETS = 1 << 18  # hashed feature space; the weights file holds one float32 per bucket
WINDOW = 40  # words per window
STRIDE = 20  # words between window starts
# words, punctuation marks, and line breaks: where a line starts is part of the signal (an
# instruction planted in a document usually starts a line of its own)
_WORD = re.compile(r"[^\W_]+|[^\w\s]|\n", re.UNICODE)


def _hash(token: str) -> int:
    return zlib.crc32(token.encode("utf-8"))


@lru_cache(maxsize=1 << 16)
def word_buckets(word: str) -> tuple[int, tuple[int, ...]]:
    """A word's 32-bit key and its own features: itself and its 4-letter pieces."""
    key = _hash(word)
    found = [key & (BUCKETS - 1)]
    if len(word) > 4:
        padded = f"<{word}>"
        found += [_hash(padded[i : i + 4]) & (BUCKETS - 1) for i in range(len(padded) - 3)]
    return key, tuple(found)


def pair_bucket(previous_key: int, key: int) -> int:
    """The feature of two words in a row, mixed from their keys (no hashing per position)."""
    return (((previous_key * 1_000_003) ^ key) * 2_654_435_761 >> 11) & (BUCKETS - 1)


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_spans(text: str) -> list[tuple[int, int]]:
    """The character span of each word of words_of(text)."""
    return [m.span() for m in _WORD.finditer(text.lower())]


def window_bounds(count: int) -> list[tuple[int, int]]:
    """[first, last) word indices of the windows over `count` words: WINDOW words every
    STRIDE words, the last window ending at the last word; one window for a short text."""
    if count == 0:
        return []
    last_start = max(0, count - WINDOW)
    starts = list(range(0, last_start + 1, STRIDE))
    if starts[-1] != last_start:
        starts.append(last_start)
    return [(first, min(first + WINDOW, count)) for first in starts]


def position_buckets(words: list[str]) -> list[tuple[int, ...]]:
    """The features of each word position (for training: a window's feature vector is the
    count of each bucket over its positions, divided by the square root of the total)."""
    out: list[tuple[int, ...]] = []
    previous = 0
    for word in words:
        key, own = word_buckets(word)
        out.append((*own, pair_bucket(previous, key)))
        previous = key
    return out
