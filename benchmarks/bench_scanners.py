"""Injection detection, measured on data the detector never saw (benchmarks/data/injection/
eval.jsonl.gz, built by injection_data.py): per corpus, the recall at fixed false-positive
rates (1% and 0.1%), the ROC AUC, and the recall and false-positive rate at the shipped
threshold; for the phrase rules alone, for the learned model alone, and for both (the
detector steward runs). Also the time per KB of text.

Corpora: the held-out 20% of each training source (bipia: its attacks against its own
held-out clean contexts; pyrit, carriers: against the held-out synth and docs benign
texts) and the sources never trained on (spikee, garak: attacks against the pooled
never-trained benign texts of pydoc, books, spikee's documents and the demo's clean
tickets). The demo's 188 clean tickets also get
their own false-positive rate.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _common import Measurement, Report, main
from injection_data import load_eval
from steward.security.injection.model import shipped_model
from steward.security.scanners import phrase_match

NEVER_TRAINED_BENIGN = ("pydoc", "books", "spikee-en", "tickets")
SPIKEE_OTHER = ("spikee-zu", "spikee-gd", "spikee-sq", "spikee-ga")


@dataclass(frozen=True, slots=True)
class Corpus:
    name: str
    attacks: list[str]
    benign: list[str]


def corpora(rows: list[dict[str, Any]]) -> list[Corpus]:
    by_source: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for row in rows:
        by_source[row["source"]][0 if row["label"] else 1].append(row["text"])
    pooled = [t for s in NEVER_TRAINED_BENIGN for t in by_source[s][1]]
    trained_benign = [t for s in ("synth", "docs") for t in by_source[s][1]]
    out = [Corpus("bipia (held-out 20%)", *by_source["bipia"])]
    out += [
        Corpus(f"{s} (held-out 20%)", by_source[s][0], trained_benign)
        for s in ("pyrit", "carriers")
    ]
    out += [Corpus(f"{s} (never trained)", by_source[s][0], pooled) for s in ("spikee-en", "garak")]
    other = [t for s in SPIKEE_OTHER for t in by_source[s][0]]
    out.append(Corpus("spikee-other (never trained; Zulu, Gaelic, Albanian, Irish)", other, pooled))
    out.append(Corpus("demo tickets (never trained)", *by_source["tickets"]))
    return out


def recall_at_fpr(
    attack_scores: Sequence[float], benign_scores: Sequence[float], fpr: float
) -> float:
    """Recall at the lowest threshold whose false-positive rate on benign is ≤ fpr (a score
    counts as a detection when strictly above the threshold)."""
    ranked = sorted(benign_scores, reverse=True)
    allowed = int(fpr * len(ranked))  # benign texts that may score above the threshold
    threshold = ranked[allowed] if allowed < len(ranked) else -1.0
    return sum(s > threshold for s in attack_scores) / len(attack_scores)


def roc_auc(attack_scores: Sequence[float], benign_scores: Sequence[float]) -> float:
    """P(attack scores above benign), ties counting half (Mann-Whitney)."""
    ranked = sorted([(s, 1) for s in attack_scores] + [(s, 0) for s in benign_scores])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n_a, n_b = len(attack_scores), len(benign_scores)
    return (rank_sum - n_a * (n_a + 1) / 2) / (n_a * n_b)


def detectors() -> dict[str, Callable[[str], float]]:
    model = shipped_model()

    def rules(text: str) -> float:
        return 1.0 if phrase_match(text) else 0.0

    def learned(text: str) -> float:
        return model.score(text).score

    def both(text: str) -> float:
        return max(rules(text), learned(text))

    return {"rules": rules, "model": learned, "rules+model": both}


def evaluate(corpus: Corpus, score: Callable[[str], float], threshold: float) -> dict[str, float]:
    attacks = [score(t) for t in corpus.attacks]
    benign = [score(t) for t in corpus.benign]
    return {
        "attacks": len(attacks),
        "benign": len(benign),
        "recall@1%": recall_at_fpr(attacks, benign, 0.01),
        "recall@0.1%": recall_at_fpr(attacks, benign, 0.001),
        "auc": roc_auc(attacks, benign),
        "recall@shipped": sum(s > threshold for s in attacks) / len(attacks),
        "fpr@shipped": sum(s > threshold for s in benign) / len(benign),
    }


async def collect(quick: bool) -> Report:
    rows = load_eval()
    if quick:
        rows = rows[::10]
    report = Report("scanners", "Injection detection on held-out and never-trained corpora", quick)
    threshold = shipped_model().threshold
    report.params = {"threshold": threshold, "model_sha256": shipped_model().sha256}
    for name, score in detectors().items():
        for corpus in corpora(rows):
            if not corpus.attacks or not corpus.benign:
                continue
            figures = evaluate(corpus, score, threshold if name != "rules" else 0.5)
            key = f"{name}:{corpus.name.split()[0]}"
            for metric in ("recall@1%", "recall@0.1%", "auc", "recall@shipped", "fpr@shipped"):
                value = figures[metric] * (1 if metric == "auc" else 100)
                unit = "" if metric == "auc" else "%"
                report.figure(
                    f"{key}:{metric}",
                    f"{name} · {corpus.name} ({figures['attacks']}/{figures['benign']}) {metric}",
                    round(value, 3),
                    unit,
                )
    texts = [r["text"] for r in rows]
    kb = sum(len(t.encode()) for t in texts) / 1024
    model = shipped_model()
    start = time.perf_counter_ns()
    for text in texts:
        model.score(text)
    elapsed = time.perf_counter_ns() - start
    report.add(
        Measurement("model_per_kb", "model score per KB of text", [int(elapsed / kb)], unit="KB")
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
