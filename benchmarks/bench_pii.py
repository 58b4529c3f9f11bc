"""PII detection: precision and recall per entity of steward's validated detectors
(security/pii.py) on a labelled set of 402 strings (benchmarks/data/pii_labelled.jsonl),
phone numbers, cards, IBANs, SSNs and emails in US, UK, German, French, Indian, Brazilian
and other formats, and hard negatives: carrier tracking numbers, order and invoice ids,
dates, times, IP addresses, near misses (bad checksums, forbidden SSN ranges).

The labels were written from the values' definitions (published test card numbers,
registry example IBANs, fictional phone ranges), not from the detector's output; but the
detector's rules were corrected after a first run on that set (an in-sample figure). A
second set of 63 strings (benchmarks/data/pii_heldout.jsonl) was written afterwards and
never used to change the detector: its figures are printed beside. A detection counts as
correct when it has a labelled entity's type and overlaps it.

Also: detection time per string over the whole set.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import Measurement, Report, main, sample_sync, scaled
from steward.security.pii import find_pii

DATA = Path(__file__).resolve().parent / "data" / "pii_labelled.jsonl"
# Written after the detector's rules were last changed, and never used to change them.
HELD_OUT = Path(__file__).resolve().parent / "data" / "pii_heldout.jsonl"
ENTITIES = ("phone", "card_number", "iban", "ssn", "email")
PRECISION_TARGET = 0.98
RECALL_TARGET = 0.95


@dataclass(frozen=True, slots=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass(slots=True)
class PiiReport(Report):
    """A Report whose JSON also lists each error: (fp|fn, entity, text)."""

    errors: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = Report.to_json(self)
        out["errors"] = self.errors
        return out


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _spans(text: str, entities: list[dict[str, str]]) -> list[tuple[str, int, int]]:
    out = []
    for entity in entities:
        start = text.index(entity["text"])
        out.append((entity["type"], start, start + len(entity["text"])))
    return out


def evaluate(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, Score], list[tuple[str, str, str]]]:
    """Scores per entity, and the errors: (fp|fn, type, text)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    errors: list[tuple[str, str, str]] = []
    for row in rows:
        text = row["text"]
        gold = _spans(text, row["entities"])
        found = [(m.kind.removeprefix("pii."), m.start, m.end) for m in find_pii(text)]
        matched: set[int] = set()
        for kind, start, end in found:
            hit = next(
                (
                    i
                    for i, (g_kind, g_start, g_end) in enumerate(gold)
                    if g_kind == kind and start < g_end and g_start < end and i not in matched
                ),
                None,
            )
            if hit is None:
                fp[kind] += 1
                errors.append(("fp", kind, text))
            else:
                matched.add(hit)
                tp[kind] += 1
        for i, (kind, _, _) in enumerate(gold):
            if i not in matched:
                fn[kind] += 1
                errors.append(("fn", kind, text))
    scores = {kind: Score(tp[kind], fp[kind], fn[kind]) for kind in ENTITIES}
    return scores, errors


def overall(scores: dict[str, Score]) -> Score:
    return Score(
        sum(s.tp for s in scores.values()),
        sum(s.fp for s in scores.values()),
        sum(s.fn for s in scores.values()),
    )


def _figures(report: Report, prefix: str, scores: dict[str, Score]) -> None:
    for kind in (*ENTITIES, "all"):
        score = overall(scores) if kind == "all" else scores[kind]
        key = prefix.strip().replace(" ", "_") + ("." if prefix else "") + kind
        for metric, target in (("precision", PRECISION_TARGET), ("recall", RECALL_TARGET)):
            value = getattr(score, metric)
            counts = f"tp {score.tp}, fp {score.fp}" if metric == "precision" else f"fn {score.fn}"
            report.figure(
                f"{key}.{metric}",
                f"{prefix}{kind} {metric} ({counts})",
                value,
                target=f">= {target}",
                ok=value >= target,
            )


async def collect(quick: bool) -> Report:
    rows = load()
    report = PiiReport(
        "pii",
        "PII detection: precision and recall per entity",
        quick,
        {
            "strings": len(rows),
            "entities": sum(len(r["entities"]) for r in rows),
            "hard_negatives": sum(not r["entities"] for r in rows),
        },
    )
    scores, errors = evaluate(rows)
    _figures(report, "", scores)
    held_out = load(HELD_OUT)
    report.params["held_out_strings"] = len(held_out)
    held_scores, held_errors = evaluate(held_out)
    _figures(report, "held-out ", held_scores)
    texts = [r["text"] for r in rows]
    repeats = scaled(quick, 5, 1)
    samples = sample_sync(lambda i: find_pii(texts[i % len(texts)]), len(texts) * repeats, 20)
    report.add(Measurement("detect", "find_pii, one labelled string", samples, unit="string"))
    report.errors = {
        "labelled": [" ".join(e) for e in errors],
        "held_out": [" ".join(e) for e in held_errors],
    }
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
