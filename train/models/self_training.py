"""Self-training: the model labels the training articles that lack a label, confidently, and is fit again.

A fixed number of rounds. In each, the unlabelled articles of a task (those of auxiliary sources, typically) whose
predicted label has a probability of at least `threshold` become labelled, weighed lower than real labels; the
model is then refit on all. Pseudo-labels are never revised, and no held-out article takes part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from train.models.base import Articles, FitContext, ModelKind
from train.schema import Task


def self_train(factory: Callable[[], ModelKind], articles: Articles, labels: dict[str, np.ndarray],
               context: FitContext, config, tasks: list[Task]) -> tuple[ModelKind, list[dict[str, int]]]:
    """The model after `config.rounds` rounds of self-training, and how many pseudo-labels each round added per task."""
    model = factory().fit(articles, labels, context)
    current = {task: np.array(y, copy=True) for task, y in labels.items()}
    weights = {task.name: articles.weights_for(task.name).astype(float) for task in tasks}
    names = [task for task in tasks if not config.tasks or task.name in config.tasks]
    by_name = {task.name: task for task in tasks}
    added_per_round = []
    for _ in range(config.rounds):
        proba = model.predict_proba(articles)
        added = {task.name: _pseudo_label(task, proba[task.name], current, weights[task.name],
                                          articles.weight_array(), config, by_name) for task in names}
        added_per_round.append(added)
        if not any(added.values()):
            break
        pseudo = replace(articles, task_weights={name: w.copy() for name, w in weights.items()})
        model = factory().fit(pseudo, {task: y.copy() for task, y in current.items()}, context)
    return model, added_per_round


def _pseudo_label(task: Task, proba: np.ndarray, current: dict[str, np.ndarray], weights: np.ndarray,
                  source_weights: np.ndarray, config, by_name: dict[str, Task]) -> int:
    """Label the confident unlabelled articles of one task in place; returns how many.

    A task that applies only under some labels of another (`applies_when`) is labelled only where that task's
    (real or pseudo) label says it applies; without that task in the model, it is not self-trained.
    """
    y = current[task.name]
    unlabelled = y < 0
    condition = task.applies_when
    if condition is not None:
        if condition.task not in by_name:
            return 0
        allowed = [by_name[condition.task].label_names.index(label) for label in condition.labels]
        unlabelled &= np.isin(current[condition.task], allowed)
    unlabelled = np.flatnonzero(unlabelled)
    confidence = proba[unlabelled].max(axis=1)
    chosen = unlabelled[confidence >= config.threshold]
    if config.per_round and len(chosen) > config.per_round:
        chosen = chosen[np.argsort(-proba[chosen].max(axis=1), kind="stable")[: config.per_round]]
    y[chosen] = proba[chosen].argmax(axis=1)
    weights[chosen] = config.weight * source_weights[chosen]
    return len(chosen)
