"""The TF-IDF baseline: shared word/char TF-IDF features, one linear classifier per schema task.

The features are fit once on the training split and shared by every task. A task with a `target_field` (stance toward
a claim) sees the text's features, the target's, and their overlap (element-wise product) plus their cosine.
Classifiers are saved with skops, never pickle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from train.errors import TaawunError
from train.config.experiment import TfidfModelConfig
from train.features.tfidf import TfidfFeatures
from train.schema import Task

# skops refuses to load types it does not know; these are the ones our classifiers are made of.
TRUSTED_TYPES = ["sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration"]

Trial = Callable[[str, dict[str, Any], float], None]


def document(title: str, text: str, use_title: bool) -> str:
    """The string the features see: title and text, or text alone."""
    return f"{title}\n{text}" if use_title and title else text


class TfidfModel:
    """Features plus one fitted classifier per task; probabilities over the schema's labels, in schema order."""

    kind = "tfidf"

    def __init__(self, config: TfidfModelConfig, tasks: list[Task]):
        self.config = config
        self.tasks = tasks
        self.features = TfidfFeatures(config.features)
        self.classifiers: dict[str, Any] = {}

    def fit(self, split, seed: int, on_trial: Trial | None = None, validation=None) -> None:
        """Fit features on `split` (a datasets.Dataset with title, text, task columns), then each task's classifier."""
        docs = [document(t, x, self.config.features.use_title) for t, x in zip(split["title"], split["text"], strict=True)]
        text_features = self.features.fit_transform(docs)
        for task in self.tasks:
            x = self._task_features(task, text_features, split)
            y = np.asarray(split[task.name])
            mask = y >= 0  # -1: no label for this task (it did not apply)
            _require_two_classes(task, y[mask])
            params = dict(self.config.params)
            if self.config.search:
                params = self._search(task, x[mask], y[mask], np.asarray(split["cluster"])[mask], seed, on_trial,
                                      validation)
            self.classifiers[task.name] = self._fit_one(x[mask], y[mask], params, seed)

    def predict_proba(self, titles: list[str], texts: list[str], targets: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels), for cleaned titles and texts."""
        docs = [document(t, x, self.config.features.use_title) for t, x in zip(titles, texts, strict=True)]
        text_features = self.features.transform(docs)
        out = {}
        for task in self.tasks:
            x = self._task_features(task, text_features, targets)
            classifier = self.classifiers[task.name]
            proba = np.zeros((x.shape[0], len(task.labels)))
            proba[:, classifier.classes_] = classifier.predict_proba(x)
            out[task.name] = proba
        return out

    def _task_features(self, task: Task, text_features: sp.csr_matrix, source) -> sp.csr_matrix:
        """The text's features, plus target, overlap and cosine features for a task with a target field."""
        if not task.target_field:
            return text_features
        targets = list(source[task.target_field])
        target_features = self.features.transform(targets)
        overlap = text_features.multiply(target_features).tocsr()
        cosine = sp.csr_matrix(np.asarray(overlap.sum(axis=1)))
        return sp.hstack([text_features, target_features, overlap, cosine], format="csr")

    def _fit_one(self, x, y, params: dict[str, Any], seed: int):
        weights = None
        if self.config.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_sample_weight

            weights = compute_sample_weight("balanced", y)
        classifier = make_classifier(self.config.classifier, params, seed, y)
        return classifier.fit(x, y, sample_weight=weights)

    def _search(self, task, x, y, groups, seed, on_trial, validation) -> dict[str, Any]:
        """Every combination of the grid, scored by macro-F1 (grouped CV on train, or the validation split)."""
        search = self.config.search
        keys = list(search.grid)
        best, best_score = dict(self.config.params), -1.0
        for values in itertools.product(*(search.grid[k] for k in keys)):
            params = {**self.config.params, **dict(zip(keys, values, strict=True))}
            score = self._score(task, x, y, groups, params, seed, validation)
            if on_trial:
                on_trial(task.name, params, score)
            if score > best_score:
                best, best_score = params, score
        return best

    def _score(self, task, x, y, groups, params, seed, validation) -> float:
        from sklearn.metrics import f1_score
        from sklearn.model_selection import StratifiedGroupKFold

        if self.config.search.on == "validation":
            if validation is None or not len(validation):
                raise TaawunError("search.on: validation needs a non-empty validation split; use search.on: cv")
            docs = [document(t, v, self.config.features.use_title)
                    for t, v in zip(validation["title"], validation["text"], strict=True)]
            x_val = self._task_features(task, self.features.transform(docs), validation)
            y_val = np.asarray(validation[task.name])
            keep = y_val >= 0
            predicted = self._fit_one(x, y, params, seed).predict(x_val[keep])
            return float(f1_score(y_val[keep], predicted, average="macro"))
        folds = StratifiedGroupKFold(n_splits=self.config.search.folds, shuffle=True, random_state=seed)
        scores = []
        for fit_rows, score_rows in folds.split(x, y, groups):
            predicted = self._fit_one(x[fit_rows], y[fit_rows], params, seed).predict(x[score_rows])
            scores.append(f1_score(y[score_rows], predicted, average="macro"))
        return float(np.mean(scores))

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Features as JSON/npz, one skops file per task."""
        self.features.save(folder)
        save_classifiers(self.classifiers, folder)

    @classmethod
    def load(cls, folder: Path, config: TfidfModelConfig, tasks: list[Task]) -> TfidfModel:
        """Load what `save` wrote."""
        model = cls(config, tasks)
        model.features = TfidfFeatures.load(folder)
        model.classifiers = load_classifiers(folder, tasks)
        return model


def save_classifiers(classifiers: dict[str, Any], folder: Path) -> None:
    """One skops file per task: `classifier-<task>.skops`."""
    import skops.io as sio

    for name, classifier in classifiers.items():
        sio.dump(classifier, folder / f"classifier-{name}.skops")


def load_classifiers(folder: Path, tasks: list[Task]) -> dict[str, Any]:
    """The tasks' skops files, refusing any type outside scikit-learn's safe set and ours."""
    import skops.io as sio

    classifiers = {}
    for task in tasks:
        path = folder / f"classifier-{task.name}.skops"
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise TaawunError(f"{path}: refusing to load unexpected types {untrusted}; is this a taawun model?")
        classifiers[task.name] = sio.load(path, trusted=TRUSTED_TYPES)
    return classifiers


def make_classifier(name: str, params: dict[str, Any], seed: int, y: np.ndarray):
    """A scikit-learn classifier with probabilities: logistic regression, calibrated linear SVM, complement NB."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB
    from sklearn.svm import LinearSVC

    try:
        if name == "logreg":
            return LogisticRegression(**{"C": 10.0, "max_iter": 1000, **params}, random_state=seed)
        if name == "complement_nb":
            return ComplementNB(**{"alpha": 0.3, **params})
        counts = np.bincount(y)
        folds = min(3, int(counts[counts > 0].min()))
        if folds < 2:
            raise TaawunError("linear_svm calibrates probabilities with cross-validation and needs at least two "
                              "training examples of every class; use classifier: logreg")
        svm = LinearSVC(**{"C": 0.5, **params}, random_state=seed)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=folds)
    except TypeError as err:
        raise TaawunError(f"model.params: {err} (check the parameter names of {name})") from None


def _require_two_classes(task: Task, y: np.ndarray) -> None:
    present = np.unique(y)
    if len(present) < 2:
        only = [task.label_names[i] for i in present]
        raise TaawunError(f"task {task.name!r}: the training split has only {only or 'no'} labels; a classifier needs "
                          "at least two classes (more data, or another split)")
