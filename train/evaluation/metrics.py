"""Metrics for every model kind: accuracy, F1s with bootstrap intervals, per-class and per-group metrics, mistakes.

Pure computation. Callers pass predictions (`TaskPredictions`); nothing here knows about models, files or MLflow.
Point metrics are scikit-learn's; the bootstrap interval recomputes macro-F1 with numpy, by the same convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

from train.schema import Task

TEXT_CHARS = 300
# Resamples per bincount pass: bounds the temporaries to BLOCK x n codes whatever `bootstrap` is.
BLOCK = 200


@dataclass
class TaskPredictions:
    """One task's predictions on one split. Class index i is `labels[i]`; `y_true == -1` marks rows without gold."""

    task: str
    labels: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    ids: list[str]
    texts: list[str]
    groups: list[str] | None = None
    positive: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true, dtype=np.int64).reshape(-1)
        self.proba = np.asarray(self.proba, dtype=np.float64)
        check_predictions(self)


def check_predictions(pred: TaskPredictions) -> None:
    """Raise ValueError, naming the task and the field, when the arrays and lists do not fit together."""
    n, k = len(pred.y_true), len(pred.labels)
    where = f"predictions of task {pred.task!r}"
    if pred.proba.shape != (n, k):
        raise ValueError(f"{where}: proba has shape {pred.proba.shape}, expected ({n}, {k}) (rows x labels)")
    if n and (pred.y_true.min() < -1 or pred.y_true.max() >= k):
        raise ValueError(f"{where}: y_true holds values outside -1..{k - 1} (class indices, -1 for no gold label)")
    for name in ("ids", "texts", "groups"):
        value = getattr(pred, name)
        if value is not None and len(value) != n:
            raise ValueError(f"{where}: {name} has {len(value)} entries, expected {n} (one per row)")
    if pred.positive is not None and pred.positive not in pred.labels:
        raise ValueError(f"{where}: positive label {pred.positive!r} is not one of {pred.labels}")


def compute_metrics(pred: TaskPredictions, *, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Metrics of one task on one split, as plain JSON-ready values (None where undefined).

    Rows with `y_true == -1` are left out everywhere. Macro- and weighted-F1 average over the labels present in the
    gold or predicted labels (scikit-learn's default); per-class metrics and the confusion matrix cover every schema
    label. `macro_f1_ci` is a percentile bootstrap over rows: `default_rng(seed).integers(0, n, size=(bootstrap, n))`.
    """
    y_true, y_pred, proba, _ = gold_rows(pred)
    k = len(pred.labels)
    present = np.union1d(y_true, y_pred).astype(np.int64)
    metrics: dict[str, Any] = {"n": int(len(y_true))}
    metrics.update(summary_metrics(y_true, y_pred, present))
    metrics["macro_f1_ci"] = bootstrap_macro_f1(y_true, y_pred, k, bootstrap, confidence, seed)
    metrics["bootstrap"] = {"resamples": int(bootstrap), "confidence": float(confidence), "seed": int(seed)}
    metrics["per_class"] = per_class_metrics(y_true, y_pred, pred.labels)
    metrics["confusion_matrix"] = confusion_counts(y_true, y_pred, k).tolist()
    if pred.positive is not None:
        metrics.update(positive_metrics(y_true, proba, pred.labels, pred.positive, metrics["per_class"]))
    if pred.groups is not None:
        groups = group_metrics(pred)
        if groups is not None:
            metrics["per_group"] = groups
    return metrics


def gold_rows(pred: TaskPredictions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, proba, row positions) of the rows that have a gold label; y_pred is the decided class."""
    rows = np.flatnonzero(pred.y_true >= 0)
    proba = pred.proba[rows]
    positive = pred.labels.index(pred.positive) if pred.positive is not None else None
    return pred.y_true[rows], decide(proba, positive, pred.threshold), proba, rows


def decide(proba: np.ndarray, positive: int | None = None, threshold: float | None = None) -> np.ndarray:
    """The predicted class of each row: the most probable one, or for a binary task with a decision threshold, the
    positive class when its probability reaches the threshold."""
    if len(proba) == 0:
        return np.zeros(0, dtype=np.int64)
    if threshold is None or positive is None:
        return proba.argmax(axis=1).astype(np.int64)
    return np.where(proba[:, positive] >= threshold, positive, 1 - positive).astype(np.int64)


def predicted_labels(tasks: list[Task], proba: dict[str, np.ndarray],
                     thresholds: dict[str, float] | None = None) -> dict[str, list[str]]:
    """The predicted label per task and article; "" where the task does not apply.

    A binary task with a decision threshold predicts its positive label when that label's probability reaches the
    threshold; other tasks predict their most probable label. Whether a task applies is decided by the label predicted
    for the task it depends on; a model without that task cannot tell, and predicts the task everywhere.
    """
    thresholds = thresholds or {}
    labels: dict[str, list[str]] = {}
    for task in in_decision_order(tasks):
        predicted = [task.label_names[i] for i in decide(proba[task.name], task.positive_index,
                                                         thresholds.get(task.name))]
        if task.applies_when and task.applies_when.task in labels:
            allowed = task.applies_when.labels
            predicted = [label if parent in allowed else ""
                         for label, parent in zip(predicted, labels[task.applies_when.task], strict=True)]
        labels[task.name] = predicted
    return labels


def in_decision_order(tasks: list[Task]) -> list[Task]:
    """`tasks` with each one after the task its `applies_when` names (when that task is among them)."""
    by_name = {task.name: task for task in tasks}

    def depth(task: Task) -> int:  # the task a task depends on comes earlier in the schema: no cycles
        parent = task.applies_when and by_name.get(task.applies_when.task)
        return 1 + depth(parent) if parent else 0

    return sorted(tasks, key=depth)


def labelled_macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 of the argmax predictions on the rows with a gold label (`y_true >= 0`); for quick scoring loops."""
    y_true = np.asarray(y_true)
    keep = y_true >= 0
    return float(f1_score(y_true[keep], np.asarray(proba)[keep].argmax(axis=1), average="macro", zero_division=0))


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray, present: np.ndarray) -> dict[str, float | None]:
    """Accuracy, macro-F1 and weighted-F1 (over the present labels, zero_division=0); None on no rows."""
    if len(y_true) == 0:
        return {"accuracy": None, "macro_f1": None, "weighted_f1": None}
    labels = present.tolist()
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
    }


def bootstrap_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int, resamples: int, confidence: float,
                       seed: int) -> list[float] | None:
    """Percentile bootstrap interval [low, high] of macro-F1; None for no resamples or no rows.

    Each resample is scored as the point estimate is: over the labels present in its own gold or predicted labels. (A
    resample that misses a rare label would otherwise count that label as F1 0, and pull the interval below the
    estimate: a perfect classifier got [0.75, 1.0].)
    """
    n = len(y_true)
    if resamples <= 0 or n == 0:
        return None
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    codes = y_true * k + y_pred
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    scores = np.concatenate([
        macro_f1_of_counts(resample_counts(codes[rows[start:start + BLOCK]], k))
        for start in range(0, resamples, BLOCK)
    ])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return [float(low), float(high)]


def resample_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts (resamples, k, k) from a (resamples, n) matrix of `true * k + pred` codes, in one bincount."""
    offsets = np.arange(len(codes), dtype=np.int64)[:, None] * (k * k)
    counts = np.bincount((codes + offsets).ravel(), minlength=len(codes) * k * k)
    return counts.reshape(len(codes), k, k)


def macro_f1_of_counts(counts: np.ndarray) -> np.ndarray:
    """Macro-F1 of each confusion matrix in `counts`, as scikit-learn scores one sample (zero_division=0).

    The mean runs over the labels present in that matrix's gold or predicted labels.
    """
    tp = np.diagonal(counts, axis1=1, axis2=2).astype(np.float64)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (gold count + predicted count).
    denominator = counts.sum(axis=2) + counts.sum(axis=1)
    present = denominator > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def per_class_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of every schema label (zero_division=0, so unseen labels score 0)."""
    if len(y_true) == 0:
        return {name: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for name in labels}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(labels))), zero_division=0)
    return {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])} for i, name in enumerate(labels)}


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows = gold, columns = predicted, every schema label in schema order."""
    if len(y_true) == 0:
        return np.zeros((k, k), dtype=np.int64)
    return confusion_matrix(y_true, y_pred, labels=list(range(k)))


def positive_metrics(y_true: np.ndarray, proba: np.ndarray, labels: list[str], positive: str,
                     per_class: dict[str, dict]) -> dict[str, dict | None]:
    """The positive class's block and its precision-recall curve; AP and curve are None with no gold positive."""
    index = labels.index(positive)
    gold = (y_true == index).astype(np.int64)
    scores = proba[:, index]
    has_positive = bool(gold.any())
    block = {"label": positive, **{key: per_class[positive][key] for key in ("precision", "recall", "f1")},
             "average_precision": float(average_precision_score(gold, scores)) if has_positive else None}
    curve = None
    if has_positive:
        precision, recall, thresholds = precision_recall_curve(gold, scores)
        curve = {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thresholds.tolist()}
    return {"positive": block, "pr_curve": curve}


def group_metrics(pred: TaskPredictions) -> dict[str, dict] | None:
    """n, accuracy and macro-F1 (over the group's own present labels) per group; None unless 2+ groups have gold."""
    y_true, y_pred, _, rows = gold_rows(pred)
    groups = np.asarray([str(pred.groups[i]) for i in rows], dtype=object)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        return None
    result = {}
    for name in names:
        mask = groups == name
        result[name] = {"n": int(mask.sum()), "accuracy": float(accuracy_score(y_true[mask], y_pred[mask])),
                        "macro_f1": float(f1_score(y_true[mask], y_pred[mask], average="macro", zero_division=0))}
    return result


def misclassified(pred: TaskPredictions, limit: int | None = None) -> list[dict]:
    """Rows whose predicted label differs from the gold one, most confident mistakes first (ties keep row order).

    Each: {"id", "task", "true", "predicted", "confidence" (proba of predicted), "probabilities": {label: p},
    "text" (first 300 chars)}. Rows without gold are never listed.
    """
    y_true, y_pred, proba, rows = gold_rows(pred)
    wrong = np.flatnonzero(y_true != y_pred)
    confidence = proba[wrong, y_pred[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")]
    if limit is not None:
        order = order[:limit]
    return [misclassified_row(pred, int(rows[j]), int(y_true[j]), int(y_pred[j])) for j in order]


def misclassified_row(pred: TaskPredictions, row: int, true: int, predicted: int) -> dict:
    """One misclassified row as a JSON-ready dict."""
    return {
        "id": str(pred.ids[row]),
        "task": pred.task,
        "true": pred.labels[true],
        "predicted": pred.labels[predicted],
        "confidence": float(pred.proba[row, predicted]),
        "probabilities": {name: float(p) for name, p in zip(pred.labels, pred.proba[row])},
        "text": str(pred.texts[row])[:TEXT_CHARS],
    }


