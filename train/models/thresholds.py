"""Decision thresholds for binary tasks, tuned for the positive class's F1 on held-out predictions.

The held-out predictions are out-of-fold probabilities of the training split (grouped cross-validation) or the
validation split's: never the test split's. The threshold is saved with the model, and predict and evaluate use it.
"""

from __future__ import annotations

import numpy as np

from train.schema import Task


def best_threshold(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """The threshold on `scores` with the best F1 for the positive rows (True in `positive`); None without any.

    Candidates are the scores of the positive rows; a tie goes to the threshold nearest 0.5 (the untuned decision).
    """
    positive = np.asarray(positive, dtype=bool)
    if not positive.any() or positive.all():
        return None
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positive[order])  # true positives when the k highest scores are called positive
    f1 = 2 * hits / (np.arange(1, len(scores) + 1) + positive.sum())
    candidates = [k for k in range(len(scores)) if positive[order[k]]]
    best = max(candidates, key=lambda k: (round(float(f1[k]), 12), -abs(float(scores[order[k]]) - 0.5)))
    return float(scores[order[best]])


def tune_thresholds(tasks: list[Task], labels: dict[str, np.ndarray], proba: dict[str, np.ndarray],
                    names: list[str] | None = None) -> dict[str, float]:
    """{task: threshold} for the binary tasks (or those in `names`) that have both labels among the held-out rows."""
    thresholds = {}
    for task in tasks:
        if task.kind != "binary" or (names and task.name not in names):
            continue
        y = np.asarray(labels[task.name])
        keep = y >= 0
        index = task.label_names.index(task.positive_label)
        found = best_threshold(y[keep] == index, proba[task.name][keep, index])
        if found is not None:
            thresholds[task.name] = found
    return thresholds
