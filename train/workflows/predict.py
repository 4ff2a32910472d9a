"""`taawun predict`: batch prediction on raw articles, streamed, with malformed records reported and skipped."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def predict_file(predictor: Predictor, source: Path, output: Path, fields: dict[str, str], batch_size: int = 1000,
                 progress: bool = True) -> PredictSummary:
    """Predict every article of `source` (JSONL, CSV/TSV, Parquet) into `output` (.jsonl or .csv), atomically."""
    out_format = _output_format(output)
    reader = ArticleReader(source, fields, [*ARTICLE_KEYS, *predictor.target_fields],
                           ["text", *predictor.target_fields])
    predicted = 0
    with atomic_file(output, newline="") as handle:
        writer = _writer(out_format, handle, predictor)
        bar = _progress(progress, source)
        for batch in _batches(_records(reader), batch_size):
            columns = {key: [record[key] for record in batch] for key in reader.column}
            proba = predict_columns(predictor, columns, clean=True)
            writer(columns["id"], label_columns(predictor.tasks, proba))
            predicted += len(batch)
            bar.update(len(batch))
        bar.close()
    return PredictSummary(predicted, reader.malformed, output)


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
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return write_jsonl

    header = ["id"] + [name for task in tasks for name in
                       (task.name, *(f"{task.name}.proba.{label}" for label in task.label_names))]
    writer = csv.writer(handle)
    writer.writerow(header)

    def write_csv(ids: list[str], columns: dict[str, list]) -> None:
        for row, article_id in enumerate(ids):
            writer.writerow([article_id] + [columns[name][row] if name in columns else "" for name in header[1:]])
    return write_csv
