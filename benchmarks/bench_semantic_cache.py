"""Semantic cache: hit and false-hit rates of all-MiniLM-L6-v2 by threshold, with and
without the number guard, on 150 support-desk text pairs (benchmarks/data/paraphrases.jsonl:
60 paraphrases that should hit; 30 negations, 30 differing only in a number, 30 different
intents sharing words, none of which should). A pair "hits" when the cosine similarity of
its two texts is at or above the threshold and, with the guard, their numbers agree. The
pairs were written for this benchmark and the threshold is chosen on them: an in-sample
figure, a starting point to check against an agent's own traffic.

Also: embedding latency per text (NumPy forward pass, one text per call) and the cost of a
lookup among 1,000 entries of one scope (the query's vector already embedded).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _common import Measurement, Report, main, sample_sync, scaled
from steward.core.messages import ModelResponse
from steward.models.embeddings import MiniLMEmbedder, Vectors, normalise
from steward.models.semantic_cache import SemanticCache, same_numbers

DATA = Path(__file__).resolve().parent / "data" / "paraphrases.jsonl"
THRESHOLDS = [round(0.70 + 0.02 * i, 2) for i in range(15)]  # 0.70 .. 0.98
KINDS = ("paraphrase", "negation", "different_number", "different_intent")
MAX_FALSE = 0.01
ENTRIES = 1_000


@dataclass(slots=True)
class SweepReport(Report):
    """A Report whose JSON also carries the whole threshold sweep."""

    sweep: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = Report.to_json(self)
        out["sweep"] = self.sweep
        return out


class Known:
    """An embedder that answers from vectors computed beforehand."""

    name = "known"

    def __init__(self, vectors: dict[str, Vectors]) -> None:
        self.vectors = vectors
        self.dimensions = len(next(iter(vectors.values())))

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self.vectors[t] for t in texts])


def pct(rate: float) -> str:
    return f"{rate * 100:.1f}"


def rates(hits: list[bool], pairs: list[dict[str, Any]], kind: str | None) -> float:
    chosen = [h for h, p in zip(hits, pairs, strict=True) if kind is None or p["kind"] == kind]
    return sum(chosen) / len(chosen)


def row(t: float, sims: list[float], pairs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold": t}
    for guard in (True, False):
        hits = [
            s >= t and (not guard or same_numbers(p["a"], p["b"]))
            for s, p in zip(sims, pairs, strict=True)
        ]
        negatives = [p for p in pairs if not p["same"]]
        out["guard" if guard else "no_guard"] = {
            "hit_rate": rates(hits, pairs, "paraphrase"),
            "false_hit_rate": sum(h for h, p in zip(hits, pairs, strict=True) if not p["same"])
            / len(negatives),
            **{f"false_{k}": rates(hits, pairs, k) for k in KINDS[1:]},
        }
    return out


def finest(sims: list[float], pairs: list[dict[str, Any]], *, guard: bool) -> float:
    """The lowest threshold, on a 0.01 grid, with false hits ≤ MAX_FALSE."""
    negatives = sorted(
        (s for s, p in zip(sims, pairs, strict=True)
         if not p["same"] and (not guard or same_numbers(p["a"], p["b"]))),
        reverse=True,
    )  # fmt: skip
    allowed = math.floor(MAX_FALSE * sum(not p["same"] for p in pairs))
    if allowed >= len(negatives):
        return 0.01
    return min(1.0, math.floor(negatives[allowed] * 100 + 1e-9) / 100 + 0.01)


def replay(
    vectors: dict[str, Vectors], pairs: list[dict[str, Any]], t: float
) -> tuple[float, float]:
    """Paraphrase hit rate and false-hit rate through SemanticCache itself (put a, get b)."""
    cache = SemanticCache(Known(vectors), t, ttl_seconds=60)
    hits = [False] * len(pairs)
    for i, pair in enumerate(pairs):
        cache.put(f"s{i}", pair["a"], ModelResponse("m", "answer"))
        hits[i] = cache.get(f"s{i}", pair["b"]) is not None
    same = [h for h, p in zip(hits, pairs, strict=True) if p["same"]]
    other = [h for h, p in zip(hits, pairs, strict=True) if not p["same"]]
    return sum(same) / len(same), sum(other) / len(other)


async def collect(quick: bool) -> Report:
    pairs = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    embedder = MiniLMEmbedder()
    texts = sorted({t for p in pairs for t in (p["a"], p["b"])})
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))
    sims = [float(vectors[p["a"]] @ vectors[p["b"]]) for p in pairs]
    counts = {k: sum(p["kind"] == k for p in pairs) for k in KINDS}
    report = SweepReport("semantic_cache", "Semantic cache: all-MiniLM-L6-v2 hit and false-hit rates",
                         quick, params={"pairs": len(pairs), **counts})  # fmt: skip
    report.sweep = [row(t, sims, pairs) for t in THRESHOLDS]

    samples = scaled(quick, 200, 20)
    report.add(Measurement("embed", "MiniLM embed, one text per call",
                           sample_sync(lambda i: embedder.embed([texts[i % len(texts)]]), samples, 5),
                           unit="text", note="NumPy, float32, CPU"))  # fmt: skip

    rng = np.random.default_rng(7)
    stored = {f"entry {i}": v for i, v in enumerate(normalise(rng.normal(size=(ENTRIES, 384))))}
    query = {f"query {i}": v for i, v in enumerate(normalise(rng.normal(size=(64, 384))))}
    cache = SemanticCache(Known({**stored, **query}), 0.9, ttl_seconds=3600, max_entries=ENTRIES)
    for text in stored:
        cache.put("scope", text, ModelResponse("m", text))
    names = list(query)
    for name in names:
        cache.get("scope", name)  # vectors memoised: what follows times the lookup alone
    report.add(Measurement("lookup", f"lookup among {ENTRIES:,} entries (vector known)",
                           sample_sync(lambda i: cache.get("scope", names[i % len(names)]),
                                       scaled(quick, 5_000, 500), 100),
                           unit="lookup", note="random unit vectors; miss"))  # fmt: skip

    for t_row in report.sweep:
        g, ng = t_row["guard"], t_row["no_guard"]
        report.figure(
            f"t{t_row['threshold']:.2f}",
            f"t={t_row['threshold']:.2f} paraphrase hits (unguarded {pct(ng['hit_rate'])})",
            g["hit_rate"] * 100,
            "%",
            f"false% guard/none {pct(g['false_hit_rate'])}/{pct(ng['false_hit_rate'])}; "
            f"negation {pct(g['false_negation'])}; number {pct(g['false_different_number'])}/"
            f"{pct(ng['false_different_number'])}; intent {pct(g['false_different_intent'])}",
            g["false_hit_rate"] <= MAX_FALSE,
        )
    for mode, label in (("guard", "with the number guard"), ("no_guard", "without the guard")):
        safe = [r for r in report.sweep if r[mode]["false_hit_rate"] <= MAX_FALSE]
        if safe:
            best = safe[0]
            report.figure(f"threshold_{mode}", f"lowest threshold, false hits ≤ 1%, {label}",
                          best["threshold"], "", "", True)  # fmt: skip
            report.figure(f"hit_rate_{mode}", f"  its hit rate on paraphrases, {label}",
                          best[mode]["hit_rate"] * 100, "%")  # fmt: skip
        else:
            report.figure(f"threshold_{mode}", f"no threshold keeps false hits ≤ 1%, {label}",
                          float("nan"), "", "", False)  # fmt: skip
    for mode, label in (("guard", "with the guard"), ("no_guard", "without the guard")):
        fine = finest(sims, pairs, guard=mode == "guard")
        report.figure(f"threshold_fine_{mode}", f"the same at 0.01 resolution, {label}", fine, "",
                      "rounded up from the highest allowed negative")  # fmt: skip
        report.figure(f"hit_rate_fine_{mode}", f"  its hit rate on paraphrases, {label}",
                      row(fine, sims, pairs)[mode]["hit_rate"] * 100, "%")  # fmt: skip
    agree = sum(
        replay(vectors, pairs, r["threshold"])
        == (r["guard"]["hit_rate"], r["guard"]["false_hit_rate"])
        for r in report.sweep
    )
    report.figure("replay", "thresholds where SemanticCache.get gives the sweep's rates", agree, "",
                  f"all {len(report.sweep)}", agree == len(report.sweep))  # fmt: skip
    by_kind = {k: [s for s, p in zip(sims, pairs, strict=True) if p["kind"] == k] for k in KINDS}
    for kind in KINDS:
        values = sorted(by_kind[kind])
        middle = float(np.median(values))
        report.figure(f"cos_{kind}", f"median cosine, {kind}", middle, "",
                      f"min/median/max {values[0]:.3f}/{middle:.3f}/{values[-1]:.3f}")  # fmt: skip
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
