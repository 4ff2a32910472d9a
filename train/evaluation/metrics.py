"""Evaluation for every model kind: metrics with bootstrap intervals, plots, misclassified rows, files for a run.

Pure computation and files. Callers pass predictions (`TaskPredictions`); nothing here knows about models or MLflow.
Point metrics are scikit-learn's; the bootstrap interval recomputes macro-F1 with numpy, by the same convention.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
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
    metrics["macro_f1_ci"] = bootstrap_macro_f1(y_true, y_pred, present, k, bootstrap, confidence, seed)
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
    """(y_true, y_pred, proba, row positions) of the rows that have a gold label; y_pred is the argmax class."""
    rows = np.flatnonzero(pred.y_true >= 0)
    proba = pred.proba[rows]
    y_pred = proba.argmax(axis=1).astype(np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
    return pred.y_true[rows], y_pred, proba, rows


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


def bootstrap_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, present: np.ndarray, k: int, resamples: int,
                       confidence: float, seed: int) -> list[float] | None:
    """Percentile bootstrap interval [low, high] of macro-F1 over `present`; None for no resamples or no rows."""
    n = len(y_true)
    if resamples <= 0 or n == 0:
        return None
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    codes = y_true * k + y_pred
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    scores = np.concatenate([
        macro_f1_of_counts(resample_counts(codes[rows[start:start + BLOCK]], k), present)
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


def macro_f1_of_counts(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Macro-F1 of each confusion matrix in `counts` over the `present` labels, as scikit-learn with zero_division=0."""
    tp = np.diagonal(counts, axis1=1, axis2=2).astype(np.float64)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (gold count + predicted count); a label absent from both scores 0.
    denominator = counts.sum(axis=2) + counts.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return f1[:, present].mean(axis=1)


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


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    """PNG of a confusion matrix: the count in each cell, coloured by its share of the gold row.

    Figure and fonts scale with the number of labels so that 10+ classes stay readable. Drawn on a bare Agg
    `Figure` (not pyplot), so it works headless and leaves the caller's matplotlib backend and figures alone.
    """
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    k = len(labels)
    side = max(5.0, 0.55 * k + 3.0)
    font = max(6.0, 12.0 - 0.4 * k)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold label's articles")
    annotate_cells(ax, counts, share, font)
    ax.set_xticks(range(k), labels=labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(k), labels=labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_figure(fig, path)


def annotate_cells(ax: Any, counts: np.ndarray, share: np.ndarray, font: float) -> None:
    """Write each count in its cell, white on dark cells so it stays legible."""
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if share[row, col] > 0.5 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=font)


def plot_pr_curve(curve: dict, title: str, path: Path) -> Path:
    """PNG of a precision-recall curve (recall on x), with the AP in the legend if `curve['average_precision']`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.add_subplot()
    ap = curve.get("average_precision")
    label = f"AP = {ap:.3f}" if ap is not None else "precision-recall"
    ax.step(curve["recall"], curve["precision"], where="post", label=label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save a figure as PNG, creating the folder; the figure is not registered with pyplot, so nothing leaks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def write_evaluation(results: dict[str, dict[str, dict]], predictions: dict[str, dict[str, TaskPredictions]],
                     folder: Path) -> list[Path]:
    """Write all evaluation artifacts of a run into `folder` and return the written paths.

    metrics.json (all of `results`); per split and task: confusion/{split}_{task}.png and .csv,
    per_class/{split}_{task}.csv, pr_curve/{split}_{task}.png for binary tasks with a curve; and per split
    misclassified/{split}.jsonl (every task's mistakes, each with "split").
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics_path = folder / "metrics.json"
    metrics_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths = [metrics_path]
    for split, tasks in results.items():
        for task, metrics in tasks.items():
            paths += write_task_files(split, task, metrics, predictions_of(predictions, split, task), folder)
        mistakes = [{"split": split, **row} for task in tasks
                    for row in misclassified(predictions_of(predictions, split, task))]
        paths.append(write_jsonl(folder / "misclassified" / f"{split}.jsonl", mistakes))
    return paths


def predictions_of(predictions: dict[str, dict[str, TaskPredictions]], split: str, task: str) -> TaskPredictions:
    """The predictions behind results[split][task]; a clear error rather than a silently missing artifact."""
    try:
        return predictions[split][task]
    except KeyError:
        raise ValueError(f"write_evaluation: results have {split}/{task} but predictions do not; "
                         "pass the TaskPredictions each result was computed from") from None


def write_task_files(split: str, task: str, metrics: dict, pred: TaskPredictions, folder: Path) -> list[Path]:
    """The confusion matrix (PNG and CSV), the per-class table and, for binary tasks, the PR curve of one task."""
    stem = f"{split}_{task}"
    labels = pred.labels
    paths = [
        plot_confusion_matrix(metrics["confusion_matrix"], labels, f"{task} ({split})",
                              folder / "confusion" / f"{stem}.png"),
        write_csv(folder / "confusion" / f"{stem}.csv", ["true\\predicted", *labels],
                  [[name, *row] for name, row in zip(labels, metrics["confusion_matrix"])]),
        write_csv(folder / "per_class" / f"{stem}.csv", ["label", "precision", "recall", "f1", "support"],
                  [[name, *(m[key] for key in ("precision", "recall", "f1", "support"))]
                   for name, m in metrics["per_class"].items()]),
    ]
    if metrics.get("pr_curve"):
        curve = {**metrics["pr_curve"], "average_precision": metrics["positive"]["average_precision"]}
        paths.append(plot_pr_curve(curve, f"{task} ({split}): {metrics['positive']['label']}",
                                   folder / "pr_curve" / f"{stem}.png"))
    return paths


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """A UTF-8 CSV with a header row, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """One JSON object per line (UTF-8, Arabic kept readable), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def flat_metrics(results: dict[str, dict[str, dict]]) -> dict[str, float]:
    """Flat metric names that group well in the MLflow UI, e.g. "test/topic/macro_f1", "test/topic/f1/sports".

    None and non-finite values are left out. Name parts are sanitized for MLflow: letters, digits, _ - . / and
    space are kept, anything else becomes "_".
    """
    flat: dict[str, float] = {}
    for split, tasks in results.items():
        for task, metrics in tasks.items():
            prefix = f"{metric_name_part(split)}/{metric_name_part(task)}"
            for name, value in task_metric_items(metrics):
                if value is not None and math.isfinite(value):
                    flat[f"{prefix}/{name}"] = float(value)
    return flat


def task_metric_items(metrics: dict) -> list[tuple[str, float | None]]:
    """(name under split/task, value) pairs of one task's metrics, values possibly None."""
    ci = metrics.get("macro_f1_ci") or [None, None]
    items = [(key, metrics.get(key)) for key in ("accuracy", "macro_f1", "weighted_f1")]
    items += [("macro_f1_ci_low", ci[0]), ("macro_f1_ci_high", ci[1])]
    for label, m in metrics.get("per_class", {}).items():
        items += [(f"{key}/{metric_name_part(label)}", m[key]) for key in ("f1", "precision", "recall")]
    positive = metrics.get("positive")
    if positive:
        items += [(f"positive_{key}", positive[key]) for key in ("f1", "precision", "recall")]
        items.append(("average_precision", positive["average_precision"]))
    for group, m in (metrics.get("per_group") or {}).items():
        items.append((f"group/{metric_name_part(group)}/macro_f1", m["macro_f1"]))
    return items


def metric_name_part(name: str) -> str:
    """`name` with every character MLflow refuses in metric names replaced by "_"."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in str(name))


def format_table(results: dict[str, dict[str, dict]], split: str = "test") -> str:
    """A plain-text table of one split: per task n, accuracy, macro-F1 [CI], weighted-F1, positive-class F1."""
    if split not in results:
        raise ValueError(f"no results for split {split!r}; available: {', '.join(results) or '(none)'}")
    tasks = results[split]
    level = next((m.get("bootstrap", {}).get("confidence") for m in tasks.values()), None) or 0.95
    header = ["task", "n", "accuracy", f"macro-F1 [{level:.0%} CI]", "weighted-F1", "positive F1"]
    rows = [table_row(task, m) for task, m in tasks.items()]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [format_line(header, widths), format_line(["-" * w for w in widths], widths)]
    lines += [format_line(row, widths) for row in rows]
    lines += [note for task, m in tasks.items() if (note := absent_label_note(task, m))]
    return "\n".join(lines)


def absent_label_note(task: str, metrics: dict) -> str | None:
    """A note on labels the model predicts that no gold article has: each pulls macro-F1 down with an F1 of 0."""
    matrix = np.asarray(metrics.get("confusion_matrix") or [], dtype=np.int64)
    if not matrix.size:
        return None
    predicted = matrix.sum(axis=0)
    absent = [f"{label} ({predicted[i]}x)" for i, (label, m) in enumerate(metrics.get("per_class", {}).items())
              if m["support"] == 0 and predicted[i] > 0]
    if not absent:
        return None
    return (f"note: {task}: predicted but in no gold label here: {', '.join(absent)}. Each counts in macro-F1 with F1 "
            "0 (scikit-learn's convention: macro-F1 averages over the gold and the predicted labels)")


def table_row(task: str, metrics: dict) -> list[str]:
    """One task's cells for `format_table`; "-" where a value is undefined."""
    ci = metrics.get("macro_f1_ci")
    macro = format_number(metrics.get("macro_f1"))
    if ci:
        macro += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    positive = metrics.get("positive")
    return [task, str(metrics.get("n", 0)), format_number(metrics.get("accuracy")), macro,
            format_number(metrics.get("weighted_f1")), format_number(positive["f1"]) if positive else "-"]


def format_number(value: float | None) -> str:
    """Three decimals, or "-" for an undefined value."""
    return "-" if value is None else f"{value:.3f}"


def format_line(cells: list[str], widths: list[int]) -> str:
    """Cells padded to their column width: the first left-aligned (names), the rest right-aligned (numbers)."""
    first, *rest = cells
    return "  ".join([first.ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(rest, widths[1:]))]).rstrip()
