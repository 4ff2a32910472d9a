"""The TF-IDF kind: shared word/char TF-IDF features, one linear classifier per schema task.

The features are fit once on the training articles and shared by every task (with `features_per_task`, once per task
on the articles labelled for it); with `rules_weight` the schema's labelling rules add a column each
(`train.features.rules`). A task with a `target_field` (stance
toward a claim) sees the text's features, the target's, and their overlap (element-wise product) plus their cosine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from train.features.rules import RuleFeatures
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
        # One set of features shared by the tasks (key None), or one per task (keys: task names).
        names = [task.name for task in tasks] if config.features_per_task else [None]
        self.features = {name: TfidfFeatures(config.features) for name in names}
        self.rules: RuleFeatures | None = None
        self.heads = TaskHeads(tasks, config.classifier, config.params, config.class_weight, config.search)

    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> TfidfModel:
        """Fit the features on the training articles (each task's on those labelled for it), then each task's
        classifier."""
        documents = self._documents(articles)
        fitted = {}
        for name, features in self.features.items():
            if name is None:
                fitted[name] = features.fit_transform(documents)
                continue
            # The task's head trains on these rows alone: the others keep empty rows instead of a second pass.
            rows = np.flatnonzero(np.asarray(labels[name]) >= 0)
            matrix = features.fit_transform([documents[row] for row in rows])
            placed = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))),
                                   shape=(len(documents), len(rows)))
            fitted[name] = (placed @ matrix).tocsr()
        if self.config.rules_weight:
            self.rules = RuleFeatures.fit(context.schema, self.config.rules_weight)
        self.heads.fit(self._feature_function(articles, fitted), articles, labels, context)
        return self

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels)."""
        return self.heads.predict_proba(self._feature_function(), articles)

    def _documents(self, articles: Articles) -> list[str]:
        use_title = self.config.features.use_title
        return [document(t, x, use_title) for t, x in zip(articles.titles, articles.texts, strict=True)]

    def _key(self, task: Task) -> str | None:
        """The key of a task's features in `self.features` (and of its text block): its name, or None when shared."""
        return task.name if self.config.features_per_task else None

    def _feature_function(self, known: Articles | None = None, known_rows: dict | None = None):
        """task, articles -> features; each text block (and the rules' block) is computed once per set of articles."""
        cache: list[tuple[Articles, dict]] = []

        def blocks_of(articles: Articles) -> dict:
            found = next((blocks for seen, blocks in cache if seen is articles), None)
            if found is None:
                if articles is known:
                    found = dict(known_rows)
                else:
                    documents = self._documents(articles)
                    found = {name: features.transform(documents) for name, features in self.features.items()}
                if self.rules is not None:
                    found["rules"] = self.rules.transform(articles.titles, articles.texts)
                cache.append((articles, found))
            return found

        def features(task: Task, articles: Articles) -> sp.csr_matrix:
            blocks = blocks_of(articles)
            text = blocks[self._key(task)]
            rules = [blocks["rules"]] if "rules" in blocks else []
            return sp.hstack([self._task_features(task, text, articles), *rules], format="csr")
        return features

    def _task_features(self, task: Task, text_features: sp.csr_matrix, articles: Articles) -> sp.csr_matrix:
        """The text's features, plus target, overlap and cosine features for a task with a target field."""
        if not task.target_field:
            return text_features
        target_features = self.features[self._key(task)].transform(articles.targets[task.target_field])
        overlap = text_features.multiply(target_features).tocsr()
        cosine = sp.csr_matrix(np.asarray(overlap.sum(axis=1)))
        return sp.hstack([text_features, target_features, overlap, cosine], format="csr")

    def save(self, folder: Path) -> None:
        """Features as JSON/npz (in `features-<task>/` folders when per task), one skops file per task."""
        for name, features in self.features.items():
            features.save(_features_folder(folder, name, create=True))
        if self.rules is not None:
            self.rules.save(folder)
        self.heads.save(folder)

    @classmethod
    def load(cls, folder: Path, config: TfidfConfig, tasks: list[Task]) -> TfidfModel:
        """Load what `save` wrote."""
        model = cls(config, tasks)
        model.features = {name: TfidfFeatures.load(_features_folder(folder, name)) for name in model.features}
        if config.rules_weight:
            model.rules = RuleFeatures.load(folder, config.rules_weight)
        model.heads.load(folder)
        return model


def _features_folder(folder: Path, task: str | None, create: bool = False) -> Path:
    """Where a model's shared features (`folder` itself) or one task's (`features-<task>/`) are saved."""
    if task is None:
        return folder
    path = folder / f"features-{task}"
    if create:
        path.mkdir(exist_ok=True)
    return path
