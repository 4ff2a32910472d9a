"""Choosing inside the training data: grouped cross-validation folds and out-of-fold probabilities.

Every choice a lever makes (ensemble weights, decision thresholds, a tuned model) is made here, on the training
articles alone: folds keep duplicate clusters together and are stratified on a task, and no test article is seen.
Choices are scored on the target articles only: auxiliary articles train in every fold and are never held out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from train.errors import TaawunError
from train.models.base import Articles, FitContext, ModelKind
from train.schema import Task

Factory = Callable[[], ModelKind]


def grouped_folds(articles: Articles, labels: dict[str, np.ndarray], tasks: list[Task], folds: int, seed: int,
                  every_row: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of `folds` folds: whole duplicate clusters, stratified on the rarest-labelled task.

    Stratifying on the task whose smallest class is smallest keeps a few of its rare articles in every fold. The
    articles of auxiliary sources are fit in every fold and never held out (a choice is scored on the target data,
    as evaluation is), unless `every_row` (cross-fitting, where every article needs a held-out prediction).
    """
    strata = np.asarray(labels[_stratifying_task(labels, tasks)])
    return fold_rows(articles.group_array(), strata, None if every_row else articles.auxiliary, folds, seed)


def fold_rows(groups: np.ndarray, strata: np.ndarray, auxiliary: np.ndarray | None, folds: int,
              seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of stratified folds of whole groups; `auxiliary` rows (a mask) fit in every fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    scored = target_mask(auxiliary, len(groups))
    held_out, always = np.flatnonzero(scored), np.flatnonzero(~scored)
    distinct = len(np.unique(groups[held_out]))
    if distinct < folds:
        raise TaawunError(f"{folds}-fold cross-validation needs at least {folds} distinct articles (duplicate "
                          f"clusters) in the training split{' besides its auxiliary ones' if len(always) else ''}; "
                          f"it has {distinct}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A class with fewer articles than folds (the rarest task's, on which the folds stratify) is expected with
        # few labels: some folds hold none of it, and the pooled out-of-fold scores still count it. scikit-learn's
        # "least populated class" warning would only be noise on the user's terminal.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(np.zeros(len(held_out)), strata[held_out], groups[held_out]))
    return [(np.sort(np.concatenate([held_out[fit], always])), held_out[held]) for fit, held in splits]


def target_mask(auxiliary: np.ndarray | None, n: int) -> np.ndarray:
    """The rows folds hold out and choices are scored on: those not auxiliary (all `n` when none or all are)."""
    if auxiliary is None or auxiliary.all():
        return np.ones(n, dtype=bool)
    return ~auxiliary


def scored_labels(articles: Articles, labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`labels` with the auxiliary articles' set to -1 (no label): what a choice is scored on. Their labels (mapped
    sections, silver votes) train the models but say little about the target data's, which evaluation measures."""
    scored = target_mask(articles.auxiliary, len(articles))
    if scored.all():
        return labels
    return {task: np.where(scored, y, -1) for task, y in labels.items()}


def _stratifying_task(labels: dict[str, np.ndarray], tasks: list[Task]) -> str:
    def smallest_class(task: Task) -> int:
        counts = np.bincount(labels[task.name][labels[task.name] >= 0], minlength=len(task.labels))
        return int(counts[counts > 0].min()) if (counts > 0).any() else 10**9

    return min(tasks, key=smallest_class).name


def out_of_fold_proba(factory: Factory, articles: Articles, labels: dict[str, np.ndarray],
                      splits: list[tuple[np.ndarray, np.ndarray]], context: FitContext) -> dict[str, np.ndarray]:
    """Each article's probabilities from a model fit on the other folds (every article the folds hold out is held out
    once; an article no fold holds out, an auxiliary one, keeps zeros and is never scored)."""
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


def adapted_out_of_fold(tasks: list[Task], proba: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                        splits: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities as `--adapt-priors` would give them on each held-out group (an outlet) as a batch.

    For each fold, the temperature and the reference label proportions are fit on the other folds' out-of-fold
    probabilities and labels (`reference_priors`, standing in for the validation split); each group the fold holds out
    then has its proportions estimated by EM from its own probabilities. No label of a held-out group is read for its
    own adaptation. A group of fewer than `MIN_ARTICLES_TO_ADAPT` articles keeps its probabilities, as `predict`
    refuses to adapt so few; rows no fold holds out (auxiliary ones) keep their zeros.
    """
    from train.models.predictor import MIN_ARTICLES_TO_ADAPT
    from train.models.priors import adapt_tasks, reference_priors

    adapted = {task: p.copy() for task, p in proba.items()}
    held_out = np.concatenate([held for _, held in splits])
    for _, held in splits:
        others = np.setdiff1d(held_out, held)
        in_fold = np.isin(np.arange(len(groups)), held)
        unheld = {task: np.where(in_fold, -1, y) for task, y in labels.items()}
        references = reference_priors(tasks, unheld, None, {task: y[others] for task, y in labels.items()},
                                      {task: p[others] for task, p in proba.items()})
        for value in np.unique(groups[held]):
            rows = held[groups[held] == value]
            if len(rows) < MIN_ARTICLES_TO_ADAPT:
                continue
            batch, _, _ = adapt_tasks(tasks, {task: p[rows] for task, p in proba.items()}, references, {})
            for task, p in batch.items():
                adapted[task][rows] = p
    return adapted
