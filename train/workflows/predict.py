"""`taawun predict`: batch prediction on raw articles, streamed, with malformed records reported and skipped."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.errors import TaawunError
from train.models.predictor import Predictor, label_columns
from train.data.readers import Row, as_text, detect_format, iter_rows, sniff_encoding
from train.evaluation.scoring import predict_columns


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
    column = {key: fields.get(key, key) for key in ("id", "text", "title", *predictor.target_fields)}
    malformed: list[str] = []
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    output.parent.mkdir(parents=True, exist_ok=True)
    predicted = 0
    try:
        with open(staging, "w", encoding="utf-8", newline="") as handle:
            writer = _writer(out_format, handle, predictor)
            bar = _progress(progress, source)
            for batch in _batches(_records(source, column, malformed), batch_size):
                columns = {key: [record[key] for record in batch] for key in column}
                proba = predict_columns(predictor, columns, clean=True)
                writer(columns["id"], label_columns(predictor.tasks, proba))
                predicted += len(batch)
                bar.update(len(batch))
            bar.close()
        staging.replace(output)
    finally:
        staging.unlink(missing_ok=True)
    return PredictSummary(predicted, malformed, output)


def _output_format(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix in (".jsonl", ".csv"):
        return suffix[1:]
    raise TaawunError(f"{output}: write predictions to a .jsonl or .csv file")


def _progress(enabled: bool, source: Path):
    from tqdm import tqdm

    return tqdm(desc=f"predicting {source.name}", unit=" articles", disable=not enabled, file=sys.stderr)


def _records(source: Path, column: dict[str, str], malformed: list[str]) -> Iterator[dict[str, str]]:
    """Records of the input as {key: value}; unreadable ones are noted in `malformed` with their line."""
    fmt = detect_format(source, "auto")
    if not source.is_file():
        raise TaawunError(f"{source}: no such file")
    if fmt == "parquet":
        rows = _parquet_rows(source)
    elif fmt in ("jsonl", "csv", "tsv"):
        rows = iter_rows(_open_text(source), fmt, source)
    else:
        raise TaawunError(f"{source}: predict reads JSONL, CSV/TSV or Parquet files")
    checked = False
    for row in rows:
        if row.error:
            malformed.append(f"{source}:{row.line}: {row.error}; skipped")
            continue
        if not checked:
            _check_first(source, row.values, column)
            checked = True
        if not as_text(row.values.get(column["text"])).strip():
            malformed.append(f"{source}:{row.line}: empty text; skipped")
            continue
        record = {key: as_text(row.values.get(name)) for key, name in column.items()}
        record["id"] = record["id"] or f"{source.name}:{row.line}"
        yield record


def _check_first(source: Path, values: dict[str, Any], column: dict[str, str]) -> None:
    for key in ("text", *(k for k in column if k not in ("id", "text", "title"))):
        if column[key] not in values:
            raise TaawunError(f"{source}: no column {column[key]!r} for {key}; map it with --field {key}=COLUMN "
                              f"(columns: {sorted(values)})")


def _open_text(source: Path) -> io.TextIOWrapper:
    """A text stream over the file (gunzipped when compressed), its encoding sniffed from the first bytes."""
    with open(source, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(source, "rb") if compressed else open(source, "rb")
    head = raw.read(65536)
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=sniff_encoding(head), newline="")


def _parquet_rows(source: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=5000):
        for values in batch.to_pylist():
            number += 1
            yield Row(number, values)


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
                    record[f"{task.name}_probabilities"] = {
                        label: round(columns[f"{task.name}.proba.{label}"][row], 6) for label in task.label_names}
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
