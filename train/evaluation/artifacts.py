"""The evaluation files of a run: metrics.json, confusion matrices (PNG, CSV), per-class tables, PR curves, mistakes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from train.evaluation.metrics import TaskPredictions, misclassified
from train.evaluation.plots import plot_confusion_matrix, plot_pr_curve


def write_evaluation(results: dict[str, dict[str, dict]], predictions: dict[str, dict[str, TaskPredictions]],
                     folder: Path, misclassified_limit: int | None = None) -> list[Path]:
    """Write all evaluation artifacts of a run into `folder` and return the written paths.

    metrics.json (all of `results`); per split and task: confusion/{split}_{task}.png and .csv,
    per_class/{split}_{task}.csv, pr_curve/{split}_{task}.png for binary tasks with a curve; and per split
    misclassified/{split}.jsonl (each task's mistakes, the `misclassified_limit` most confident, each with "split").
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
                    for row in misclassified(predictions_of(predictions, split, task), misclassified_limit)]
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
