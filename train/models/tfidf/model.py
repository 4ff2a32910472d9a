"""The TF-IDF kind: shared word/char TF-IDF features, one linear classifier per schema task.

The features are fit once on the training articles and shared by every task. A task with a `target_field` (stance
toward a claim) sees the text's features, the target's, and their overlap (element-wise product) plus their cosine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from train.features.tfidf import TfidfFeatures, document
from train.models.base import Articles, FitContext, ModelKind
from train.models.heads import TaskHeads
from train.models.tfidf.config import TfidfConfig
from train.schema import Task


class TfidfModel(ModelKind):
    """Features plus one fitted classifier per task."""

    kind = "tfidf"
    config_class = TfidfConfig

    def __init__(self, config: TfidfConfig, tasks: list[Task]):
        super().__init__(config, tasks)
        self.features = TfidfFeatures(config.features)
        self.heads = TaskHeads(tasks, config.classifier, config.params, config.class_weight, config.search)

    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> TfidfModel:
        """Fit the features on the training articles, then each task's classifier."""
        fitted = self.features.fit_transform(self._documents(articles))
        self.heads.fit(self._feature_function(articles, fitted), articles, labels, context)
        return self

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels)."""
        return self.heads.predict_proba(self._feature_function(), articles)

    def _documents(self, articles: Articles) -> list[str]:
        use_title = self.config.features.use_title
        return [document(t, x, use_title) for t, x in zip(articles.titles, articles.texts, strict=True)]

    def _feature_function(self, known: Articles | None = None, known_rows: sp.csr_matrix | None = None):
        """task, articles -> features; the text block is computed once per set of articles."""
        cache: list[tuple[Articles, sp.csr_matrix]] = [] if known is None else [(known, known_rows)]

        def features(task: Task, articles: Articles) -> sp.csr_matrix:
            rows = next((rows for seen, rows in cache if seen is articles), None)
            if rows is None:
                rows = self.features.transform(self._documents(articles))
                cache.append((articles, rows))
            return self._task_features(task, rows, articles)
        return features

    def _task_features(self, task: Task, text_features: sp.csr_matrix, articles: Articles) -> sp.csr_matrix:
        """The text's features, plus target, overlap and cosine features for a task with a target field."""
        if not task.target_field:
            return text_features
        target_features = self.features.transform(articles.targets[task.target_field])
        overlap = text_features.multiply(target_features).tocsr()
        cosine = sp.csr_matrix(np.asarray(overlap.sum(axis=1)))
        return sp.hstack([text_features, target_features, overlap, cosine], format="csr")

    def save(self, folder: Path) -> None:
        """Features as JSON/npz, one skops file per task."""
        self.features.save(folder)
        self.heads.save(folder)

    @classmethod
    def load(cls, folder: Path, config: TfidfConfig, tasks: list[Task]) -> TfidfModel:
        """Load what `save` wrote."""
        model = cls(config, tasks)
        model.features = TfidfFeatures.load(folder)
        model.heads.load(folder)
        return model
