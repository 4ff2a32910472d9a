"""`taawun predict`: batch prediction on raw articles, streamed, with malformed records reported and skipped."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.data.table import ARTICLE_KEYS, ArticleReader
from train.errors import TaawunError
from train.evaluation.scoring import predict_columns
from train.files import atomic_file
from train.models.predictor import Predictor, label_columns


@dataclass
class PredictSummary:
    """Counts of a prediction run, and where its output went."""

    predicted: int
    malformed: list[str]
    output: Path
    skipped: int | None = None  # records skipped: len(malformed), unless the list names only the first ones (Spark)
    estimated_priors: dict[str, dict[str, float]] | None = None  # {task: {label: share}} with --adapt-priors

    def __post_init__(self) -> None:
        if self.skipped is None:
            self.skipped = len(self.malformed)


def predict_file(predictor: Predictor, source: Path, output: Path, fields: dict[str, str], batch_size: int = 1000,
                 progress: bool = True, adapt_priors: bool = False) -> PredictSummary:
    """Predict every article of `source` (JSONL, CSV/TSV, Parquet) into `output` (.jsonl or .csv), atomically.

    With `adapt_priors`, the probabilities are re-weighed for the label proportions estimated in the whole input
    (`Predictor.adapt_priors`): every batch's probabilities are held until the last is predicted, then written.
    """
    if source.is_dir() or output.is_dir():
        raise TaawunError(f"{source if source.is_dir() else output} is a folder: this engine reads one file and writes "
                          "one; --engine spark reads a folder of files and writes a folder of part files")
    out_format = _output_format(output)
    reader = ArticleReader(source, fields, [*ARTICLE_KEYS, *predictor.target_fields],
                           ["text", *predictor.target_fields])
    predicted, held, estimates = 0, [], None
    with atomic_file(output, newline="") as handle:
        writer = _writer(out_format, handle, predictor)
        bar = _progress(progress, source)
        for batch in _batches(_records(reader), batch_size):
            columns = {key: [record[key] for record in batch] for key in reader.column}
            proba, evidence = predict_columns(predictor, columns, clean=True), _evidence_columns(predictor, columns)
            if adapt_priors:
                held.append((columns["id"], proba, evidence))
            else:
                writer(columns["id"], {**label_columns(predictor.tasks, proba, predictor.thresholds), **evidence})
            predicted += len(batch)
            bar.update(len(batch))
        bar.close()
        if held:
            estimates = _write_adapted(writer, predictor, held)
    return PredictSummary(predicted, reader.malformed, output, estimated_priors=estimates)


def _evidence_columns(predictor: Predictor, columns: dict[str, list]) -> dict[str, list]:
    """`<task>.evidence` and `<task>.evidence_score` columns for the tasks whose model points at a sentence."""
    evidence = {}
    for task, rows in predictor.evidence(columns["title"], columns["text"]).items():
        evidence[f"{task}.evidence"] = [row["sentence"] for row in rows]
        evidence[f"{task}.evidence_score"] = [row["score"] for row in rows]
    return evidence


def _write_adapted(writer, predictor: Predictor, held: list[tuple]) -> dict[str, dict[str, float]]:
    """The held batches (ids, probabilities, evidence) written with their probabilities adapted together
    (`Predictor.adapt_priors`); returns the label proportions estimated per task."""
    adapted, estimates, thresholds = predictor.adapt_priors(
        {task: np.vstack([proba[task] for _, proba, _ in held]) for task in held[0][1]})
    start = 0
    for ids, _, evidence in held:
        part = {task: values[start:start + len(ids)] for task, values in adapted.items()}
        writer(ids, {**label_columns(predictor.tasks, part, thresholds), **evidence})
        start += len(ids)
    return estimates


def _output_format(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix in (".jsonl", ".csv"):
        return suffix[1:]
    raise TaawunError(f"{output}: write predictions to a .jsonl or .csv file")


def _progress(enabled: bool, source: Path):
    from tqdm import tqdm

    return tqdm(desc=f"predicting {source.name}", unit=" articles", disable=not enabled, file=sys.stderr)


def _records(reader: ArticleReader) -> Iterator[dict[str, str]]:
    """Records of the input as {key: value}; unreadable ones and empty texts are noted in `reader.malformed`."""
    for line, record in reader:
        if not record["text"].strip():
            reader.malformed.append(f"{reader.path}:{line}: empty text; skipped")
            continue
        record["id"] = record["id"] or f"{reader.path.name}:{line}"
        yield record


def _batches(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _writer(out_format: str, handle, predictor: Predictor):
    """A function writing one batch: JSONL with {task: label, task_probabilities: {...}}, or flat CSV columns."""
    tasks = predictor.tasks
    if out_format == "jsonl":
        def write_jsonl(ids: list[str], columns: dict[str, list]) -> None:
            for row, article_id in enumerate(ids):
                record: dict[str, Any] = {"id": article_id}
                for task in tasks:
                    record[task.name] = columns[task.name][row]
                    record[f"{task.name}_probabilities"] = {  # None where the task does not apply (label "")
                        label: round(columns[f"{task.name}.proba.{label}"][row], 6) for label in task.label_names
                    } if record[task.name] else None
                    if f"{task.name}.evidence" in columns and record[task.name]:
                        record[f"{task.name}_evidence"] = {"sentence": columns[f"{task.name}.evidence"][row],
                                                           "score": columns[f"{task.name}.evidence_score"][row]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return write_jsonl

    evidence = set(predictor.evidence_tasks)
    header = ["id"] + [name for task in tasks for name in
                       (task.name, *(f"{task.name}.proba.{label}" for label in task.label_names),
                        *((f"{task.name}.evidence", f"{task.name}.evidence_score") if task.name in evidence else ()))]
    writer = csv.writer(handle)
    writer.writerow(header)

    def write_csv(ids: list[str], columns: dict[str, list]) -> None:
        for row, article_id in enumerate(ids):
            writer.writerow([article_id] + [columns[name][row] if name in columns else "" for name in header[1:]])
    return write_csv

