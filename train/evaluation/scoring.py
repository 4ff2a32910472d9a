"""Scoring a trained model on held-out articles: a built dataset's split, or a raw file of labelled articles."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from train.data.table import ARTICLE_KEYS, ArticleReader, label_indices
from train.errors import TaawunError
from train.evaluation.metrics import TaskPredictions, compute_metrics
from train.models.predictor import Predictor

PREDICT_BATCH = 2000


def predict_columns(predictor: Predictor, columns: dict[str, list], clean: bool) -> dict[str, np.ndarray]:
    """Probabilities per task for column-wise articles (`title`, `text`, target fields), in batches."""
    n = len(columns["text"])
    titles = columns.get("title") or [""] * n
    parts: dict[str, list[np.ndarray]] = {task.name: [] for task in predictor.tasks}
    for start in range(0, n, PREDICT_BATCH):
        end = start + PREDICT_BATCH
        targets = {name: columns[name][start:end] for name in predictor.target_fields}
        predict = predictor.predict_raw if clean else predictor.predict_clean
        for task, proba in predict(titles[start:end], columns["text"][start:end], targets).items():
            parts[task].append(proba)
    return {task: np.vstack(chunks) if chunks else np.zeros((0, len(predictor.schema.task(task).labels)))
            for task, chunks in parts.items()}


def score(predictor: Predictor, columns: dict[str, list], labels: dict[str, list[int]], clean: bool,
          group_field: str | None, evaluation) -> tuple[dict[str, dict], dict[str, TaskPredictions]]:
    """Metrics and predictions per task; `labels[task]` holds class indices (-1: no gold label).

    Each task's metrics carry `articles_per_second`: the prediction throughput (all tasks at once, metrics not timed).
    """
    started = time.perf_counter()
    proba = predict_columns(predictor, columns, clean)
    estimates, thresholds = {}, predictor.thresholds
    if evaluation.adapt_priors:
        proba, estimates, thresholds = predictor.adapt_priors(proba)
    elapsed = time.perf_counter() - started
    groups = columns.get(group_field) if group_field else None
    results, predictions = {}, {}
    for task in predictor.tasks:
        if task.name not in labels:
            continue
        pred = TaskPredictions(task=task.name, labels=task.label_names, y_true=np.asarray(labels[task.name]),
                               proba=proba[task.name], ids=list(columns["id"]), texts=list(columns["text"]),
                               groups=list(groups) if groups and len(set(groups)) > 1 else None,
                               positive=task.positive_label, threshold=thresholds.get(task.name))
        predictions[task.name] = pred
        results[task.name] = compute_metrics(pred, bootstrap=evaluation.bootstrap, confidence=evaluation.confidence,
                                             seed=0)
        results[task.name]["articles_per_second"] = len(columns["text"]) / elapsed if elapsed else None
        if task.name in estimates:
            results[task.name]["estimated_priors"] = estimates[task.name]
    return results, predictions


def dataset_columns(split, predictor: Predictor) -> tuple[dict[str, list], dict[str, list[int]]]:
    """Columns and gold labels of a built dataset's split, for the model's tasks."""
    names = {"id", "title", "text", "source", *predictor.target_fields}
    columns = {name: list(split[name]) for name in names if name in split.column_names}
    missing = [task.name for task in predictor.tasks if task.name not in split.column_names]
    if missing:
        raise TaawunError(f"the dataset has no column for the model's tasks {missing}; was it built with the same "
                          "schema as the model?")
    _check_label_order(split, predictor)
    return columns, {task.name: list(split[task.name]) for task in predictor.tasks}


def _check_label_order(split, predictor: Predictor) -> None:
    for task in predictor.tasks:
        names = split.features[task.name].names
        if names != task.label_names:
            raise TaawunError(f"task {task.name!r}: the dataset's labels {names} differ from the model's "
                              f"{task.label_names}; evaluate with a dataset built from the model's schema")


def raw_file_columns(path: Path, predictor: Predictor, fields: dict[str, str]) -> tuple[dict, dict]:
    """Columns and gold labels from a raw JSONL/CSV/Parquet file; labels mapped through the schema (aliases too).

    `fields` maps id, text, title, target fields and task names to the file's columns (default: the same name); a
    mapped column must be in the file. A task whose (unmapped) column is absent is not scored.
    """
    tasks = [task.name for task in predictor.tasks]
    reader = ArticleReader(path, fields, [*ARTICLE_KEYS, *predictor.target_fields, *tasks],
                           ["text", *predictor.target_fields])
    column = reader.column
    records = list(reader)
    if reader.malformed:
        raise TaawunError("unreadable records:\n  " + "\n  ".join(reader.malformed[:20]))
    columns = {key: [record[key] for _, record in records] for key in (*ARTICLE_KEYS, *predictor.target_fields)}
    if column["id"] not in reader.present:
        columns["id"] = [f"{path.name}:{line}" for line, _ in records]
    present = [task for task in predictor.tasks if column[task.name] in reader.present]
    if not present:
        tasks = [task.name for task in predictor.tasks]
        raise TaawunError(f"{path}: no label column for any of the model's tasks {tasks}; map one with --field "
                          f"TASK=COLUMN (columns: {sorted(reader.present)})")
    return columns, label_indices(path, records, present, "the model's")
