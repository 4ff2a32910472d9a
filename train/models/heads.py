"""One scikit-learn classifier per task on features a kind computes: the heads of the tfidf and sentence_encoder kinds.

Heads train on the rows that have a label for their task, weighted by the articles' weights (times balanced class
weights when asked). A `search` tries every combination of a grid per task, scored by macro-F1 with cross-validation
grouped by duplicate cluster (or on the validation split), and keeps the best; it may also choose, per task, the weight
of the auxiliary articles (0: the head trains on the target articles alone). Classifiers are saved with skops, never
pickle, one file per task.
"""

from __future__ import annotations

import importlib.abc
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from train import progress
from train.errors import TaawunError
from train.models.base import Articles, FitContext, Labelled
from train.schema import Task

Classifier = Literal["logreg", "linear_svm", "complement_nb", "mlp"]
# Each classifier's parameters unless the config's `params` say otherwise.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logreg": {"C": 10.0, "max_iter": 2000},
    "linear_svm": {"C": 0.5},
    "complement_nb": {"alpha": 0.3},
    "mlp": {"hidden_layer_sizes": (256,), "max_iter": 300, "early_stopping": False},
}
# skops refuses to load types it does not know; these are the ones our classifiers are made of.
TRUSTED_TYPES = ["sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration"]

Features = Callable[[Task, Articles], Any]  # one task's feature matrix for some articles


class SearchConfig(BaseModel):
    """Hyperparameter search per task: every combination of `grid`, scored by macro-F1, is an MLflow child run."""

    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] = Field(default={}, description="classifier parameters, each with its values")
    auxiliary_weights: list[Annotated[float, Field(ge=0)]] = Field(default=[], description=(
        "weights of the auxiliary articles to try for each task's head (0: target articles only); the articles' own "
        "weights when empty"))
    on: Literal["cv", "validation"] = "cv"
    folds: int = Field(default=3, ge=2)

    @model_validator(mode="after")
    def _check_something_to_search(self) -> SearchConfig:
        if not self.grid and not self.auxiliary_weights:
            raise ValueError("give a `grid` of classifier parameters, `auxiliary_weights`, or both")
        if any(not isinstance(values, list) or not values for values in self.grid.values()):
            raise ValueError("grid: give each parameter a non-empty list of values")
        return self


class TaskHeads:
    """A classifier per task, fit on the rows labelled for it; probabilities in schema label order."""

    def __init__(self, tasks: list[Task], classifier: str, params: dict[str, Any], class_weight: str,
                 search: SearchConfig | None = None):
        self.tasks = tasks
        self.classifier = classifier
        self.params = {**DEFAULT_PARAMS[classifier], **params}
        self.class_weight = class_weight
        self.search = search
        self.classifiers: dict[str, Any] = {}

    def fit(self, features: Features, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> None:
        """Fit every task's head on `features(task, articles)`; a search first picks its parameters."""
        no_auxiliary = articles.auxiliary is None or not articles.auxiliary.any()
        if self.search and self.search.auxiliary_weights and no_auxiliary:
            raise TaawunError("model.search.auxiliary_weights: the training data has no auxiliary article; drop the "
                              "option, or train on a data config with an auxiliary source")
        for task in self.tasks:
            weights = articles.weights_for(task.name)
            y = np.asarray(labels[task.name])
            rows = np.flatnonzero(y >= 0)  # -1: no label for this task (it did not apply)
            require_two_classes(task, y[rows])
            x = features(task, articles)[rows]
            params, weights = self.params, weights[rows]
            if self.search:
                auxiliary = None if articles.auxiliary is None else articles.auxiliary[rows]
                params, weights = self._search(task, features, x, y[rows], weights, articles.group_array()[rows],
                                               auxiliary, context)
            progress.step(f"fitting {task.name}: {self.classifier} on {int(np.sum(weights > 0))} articles")
            self.classifiers[task.name] = self._fit_one(x, y[rows], weights, params, context.seed)

    def predict_proba(self, features: Features, articles: Articles) -> dict[str, np.ndarray]:
        """{task: (articles, labels)} probabilities; labels a head never saw get 0."""
        out = {}
        for task in self.tasks:
            classifier = self.classifiers[task.name]
            x = features(task, articles)
            proba = np.zeros((x.shape[0], len(task.labels)))
            proba[:, classifier.classes_] = classifier.predict_proba(x)
            out[task.name] = proba
        return out

    def _fit_one(self, x, y: np.ndarray, weights: np.ndarray, params: dict[str, Any], seed: int):
        """A classifier fit on the rows of non-zero weight."""
        if not np.all(weights > 0):
            keep = np.flatnonzero(weights > 0)
            x, y, weights = x[keep], y[keep], weights[keep]
        if self.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_sample_weight

            weights = weights * compute_sample_weight("balanced", y)
        uniform = bool(np.all(weights == 1))
        return make_classifier(self.classifier, params, seed, y).fit(x, y, sample_weight=None if uniform else weights)

    def _trials(self, weights: list[float]) -> str:
        """How many combinations a search tries and how, for progress lines."""
        combinations = int(np.prod([len(values) for values in self.search.grid.values()])) * max(1, len(weights))
        how = "on the validation split" if self.search.on == "validation" else (
            f"by {self.search.folds}-fold cross-validation")
        return f"{combinations} combination(s) {how}"

    def _search(self, task: Task, features: Features, x, y, weights, groups, auxiliary,
                context: FitContext) -> tuple[dict[str, Any], np.ndarray]:
        """Every combination of the grid (and of the auxiliary articles' weights), scored by macro-F1 on target
        articles, never auxiliary ones; the best parameters and sample weights (first on ties)."""
        # A task no auxiliary article is labelled for has no such weight to choose.
        choices = self.search.auxiliary_weights if auxiliary is not None and auxiliary.any() else []
        if not self.search.grid and not choices:
            return self.params, weights
        if 0 in choices and auxiliary.all():
            raise TaawunError(f"model.search.auxiliary_weights: 0 leaves {task.name} no article to train on (none of "
                              "its target articles is labelled); drop 0 from the list")
        progress.step(f"searching {task.name}: {self._trials(choices)}")
        keys = list(self.search.grid)
        best, best_score, shown_best = (self.params, weights), -1.0, {}
        for weight in choices or [None]:
            trial_weights = weights if weight is None else np.where(auxiliary, weight, weights)
            for values in itertools.product(*(self.search.grid[k] for k in keys)):
                tried = dict(zip(keys, values, strict=True))
                params = {**self.params, **tried}
                if self.search.on == "validation":
                    score = self._validation_score(task, features, x, y, trial_weights, params, context)
                else:
                    score = self._cv_score(x, y, trial_weights, groups, auxiliary, params, context.seed)
                shown = tried if weight is None else {**tried, "auxiliary_weight": weight}
                if context.on_trial:
                    context.on_trial(task.name, {**params, **shown}, score)
                if score > best_score:
                    best, best_score, shown_best = (params, trial_weights), score, shown
        progress.step(f"{task.name}: chose {shown_best} (macro-F1 {best_score:.3f})")
        return best

    def _validation_score(self, task, features, x, y, weights, params, context: FitContext) -> float:
        from sklearn.metrics import f1_score

        if not context.has_validation:
            raise TaawunError("search.on: validation needs a non-empty validation split; use search.on: cv")
        validation: Labelled = context.validation
        y_val = np.asarray(validation.labels[task.name])
        keep = np.flatnonzero(y_val >= 0)
        x_val = features(task, validation.articles)[keep]
        predicted = self._fit_one(x, y, weights, params, context.seed).predict(x_val)
        return float(f1_score(y_val[keep], predicted, average="macro"))

    def _cv_score(self, x, y, weights, groups, auxiliary, params, seed: int) -> float:
        from sklearn.metrics import f1_score

        from train.models.selection import fold_rows

        scores = []
        for fit_rows, score_rows in fold_rows(groups, y, auxiliary, self.search.folds, seed):
            predicted = self._fit_one(x[fit_rows], y[fit_rows], weights[fit_rows], params, seed).predict(x[score_rows])
            scores.append(f1_score(y[score_rows], predicted, average="macro"))
        return float(np.mean(scores))

    def save(self, folder: Path) -> None:
        """One skops file per task: `classifier-<task>.skops`."""
        sio = skops_io()
        for name, classifier in self.classifiers.items():
            sio.dump(classifier, folder / f"classifier-{name}.skops")

    def load(self, folder: Path) -> TaskHeads:
        """Read the tasks' skops files, refusing any type outside scikit-learn's safe set and ours."""
        sio = skops_io()
        for task in self.tasks:
            path = folder / f"classifier-{task.name}.skops"
            if not path.is_file():
                raise TaawunError(f"{folder}: no {path.name}; the model folder is incomplete (copy it again, or "
                                  "retrain)")
            untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
            if untrusted:
                raise TaawunError(f"{path}: refusing to load unexpected types {untrusted}; is this a taawun model?")
            self.classifiers[task.name] = sio.load(path, trusted=TRUSTED_TYPES)
        return self


def skops_io():
    """`skops.io`, imported without importing torch when torch is not loaded yet.

    skops lists scikit-learn's estimators with `all_estimators()`, which imports every scikit-learn package, among them
    `sklearn.externals.array_api_compat.torch`, which imports torch: 2 s and hundreds of MB for nothing, since no
    estimator lives there (the walk skips packages that fail to import). Hidden, torch stays importable afterwards.
    """
    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io

    class HideTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is not imported while skops lists scikit-learn's estimators")

    hidden = HideTorch()
    sys.meta_path.insert(0, hidden)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(hidden)
    return skops.io


def make_classifier(name: str, params: dict[str, Any], seed: int, y: np.ndarray):
    """A scikit-learn classifier with probabilities: logistic regression, calibrated linear SVM, complement NB, MLP."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import LinearSVC

    try:
        if name == "logreg":
            return LogisticRegression(**params, random_state=seed)
        if name == "complement_nb":
            return ComplementNB(**params)
        if name == "mlp":
            return MLPClassifier(**params, random_state=seed)
        counts = np.bincount(y)
        folds = min(3, int(counts[counts > 0].min()))
        if folds < 2:
            raise TaawunError("linear_svm calibrates probabilities with cross-validation and needs at least two "
                              "training examples of every class; use classifier: logreg")
        return CalibratedClassifierCV(LinearSVC(**params, random_state=seed), method="sigmoid", cv=folds)
    except TypeError as err:
        raise TaawunError(f"model.params: {err} (check the parameter names of {name})") from None


def require_two_classes(task: Task, y: np.ndarray) -> None:
    """A classifier needs two classes among the training labels of its task."""
    present = np.unique(y)
    if len(present) < 2:
        only = [task.label_names[i] for i in present]
        raise TaawunError(f"task {task.name!r}: the training split has only {only or 'no'} labels; a classifier needs "
                          "at least two classes (more data, or another split)")
