"""Choosing inside the training data: grouped cross-validation folds and out-of-fold probabilities.

Every choice a lever makes (ensemble weights, decision thresholds, a tuned model) is made here, on the training
articles alone: folds keep duplicate clusters together and are stratified on a task, and no test article is seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from train.errors import TaawunError
from train.models.base import Articles, FitContext, ModelKind
from train.schema import Task

Factory = Callable[[], ModelKind]


def grouped_folds(articles: Articles, labels: dict[str, np.ndarray], tasks: list[Task], folds: int,
                  seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of `folds` folds: whole duplicate clusters, stratified on the rarest-labelled task.

    Stratifying on the task whose smallest class is smallest keeps a few of its rare articles in every fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = articles.group_array()
    if len(np.unique(groups)) < folds:
        raise TaawunError(f"{folds}-fold cross-validation needs at least {folds} distinct articles (duplicate "
                          f"clusters) in the training split; it has {len(np.unique(groups))}")
    strata = np.asarray(labels[_stratifying_task(labels, tasks)])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(fit, held) for fit, held in splitter.split(np.zeros(len(articles)), strata, groups)]


def _stratifying_task(labels: dict[str, np.ndarray], tasks: list[Task]) -> str:
    def smallest_class(task: Task) -> int:
        counts = np.bincount(labels[task.name][labels[task.name] >= 0], minlength=len(task.labels))
        return int(counts[counts > 0].min()) if (counts > 0).any() else 10**9

    return min(tasks, key=smallest_class).name


def out_of_fold_proba(factory: Factory, articles: Articles, labels: dict[str, np.ndarray],
                      splits: list[tuple[np.ndarray, np.ndarray]], context: FitContext) -> dict[str, np.ndarray]:
    """Each article's probabilities from a model fit on the other folds (every article is held out once)."""
    out: dict[str, np.ndarray] = {}
    inner = replace(context, validation=None, log_metrics=None, on_trial=None, resume=False)
    for index, (fit_rows, held_rows) in enumerate(splits):
        model = factory()
        if context.work_dir is not None:
            inner = replace(inner, work_dir=context.work_dir / f"fold-{index}")
        model.fit(articles.select(fit_rows), {task: y[fit_rows] for task, y in labels.items()}, inner)
        for task, proba in model.predict_proba(articles.select(held_rows)).items():
            out.setdefault(task, np.zeros((len(articles), proba.shape[1])))[held_rows] = proba
    return out


def mean_macro_f1(labels: dict[str, np.ndarray], proba: dict[str, np.ndarray]) -> float:
    """Macro-F1 of the argmax predictions, averaged over the tasks (rows without a label left out)."""
    from train.evaluation.metrics import labelled_macro_f1

    return float(np.mean([labelled_macro_f1(labels[task], p) for task, p in proba.items()]))
