"""A detector model the user brings: a local Hugging Face text-classification model (for
example a prompt-injection classifier they have vetted) at a path they configure, run on
the CPU. Needs the `injection-local` extra (transformers, torch); never downloads: the
model is loaded with local_files_only.

    from steward.gate import GateConfig
    from steward.security.injection.local import TransformersModel
    from steward.security.scanners import InjectionDetector, PiiRedactor

    model = TransformersModel("/models/my-injection-classifier", label="INJECTION")
    GateConfig(scanners=(InjectionDetector(lambda: model), PiiRedactor()))
"""

from __future__ import annotations

from typing import Any

from steward.security.injection.model import Score

CHUNK = 2000  # characters per call; a text's score is its highest chunk's


class TransformersModel:
    def __init__(self, path: str, *, label: str = "INJECTION", threshold: float = 0.5) -> None:
        from transformers import pipeline  # the injection-local extra

        self.threshold = threshold
        self._label = label.lower()
        self._pipe: Any = pipeline(
            "text-classification", model=path, device=-1, top_k=None,
            model_kwargs={"local_files_only": True},
        )  # fmt: skip

    def score(self, text: str) -> Score:
        best = Score(0.0)
        for at in range(0, max(len(text), 1), CHUNK):
            labels = self._pipe(text[at : at + CHUNK], truncation=True)
            labels = labels[0] if labels and isinstance(labels[0], list) else labels
            for item in labels:
                if str(item["label"]).lower() == self._label and item["score"] > best.score:
                    best = Score(float(item["score"]), at, min(len(text), at + CHUNK))
        return best
