"""Reading a raw article table whose columns `--field KEY=COLUMN` maps: the one reader behind `taawun evaluate`,
`taawun predict` and `taawun annotate suggest`.

JSONL, CSV/TSV (plain or .gz) and Parquet files are streamed row by row, so a large news archive is never held whole.
A key is an article field (`id`, `text`, `title`), a target field of the model's tasks, or (for evaluation) a task
name; by default it reads the column of the same name. A key the command does not read, or a mapped column the file
lacks, is an error. A record that cannot be read (malformed, or a line in another encoding) is reported with its line.
"""

from __future__ import annotations

import difflib
import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from train.data.readers import Lines, Row, as_text, detect_encoding, detect_format, iter_rows
from train.errors import TaawunError

if TYPE_CHECKING:
    from train.schema import Task

ARTICLE_KEYS = ("id", "text", "title")
TABLE_FORMATS = ("jsonl", "csv", "tsv", "parquet")
SNIFF_BYTES = 65536  # the encoding is detected from the first bytes; later lines in another one are reported


def parse_fields(pairs: Iterable[str]) -> dict[str, str]:
    """`--field key=column` options as a mapping; a key given twice is an error."""
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise TaawunError(f"--field {pair!r}: write KEY=COLUMN, e.g. --field topic=label or --field text=body")
        key = key.strip()
        if key in fields:
            raise TaawunError(f"--field {key} given twice ({key}={fields[key]} and {pair}); map each key once")
        fields[key] = column.strip()
    return fields


def field_columns(fields: dict[str, str], keys: Iterable[str]) -> dict[str, str]:
    """key -> column for every key the reader knows: the user's mapping, else the column of the same name.

    A mapped key that is not one of `keys` is an error naming the closest key and all of them.
    """
    keys = list(dict.fromkeys(keys))
    for key, column in fields.items():
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise TaawunError(f"--field {key}={column}: {key!r} is not a key this command reads{hint} Valid keys: "
                              f"{keys} (article fields, the model's target fields, and for evaluation its tasks)")
    return {key: fields.get(key, key) for key in keys}


def stream_rows(path: Path) -> Iterator[Row]:
    """The rows of a JSONL, CSV/TSV (plain or .gz) or Parquet file, one at a time."""
    if not path.is_file():
        raise TaawunError(f"{path}: no such file")
    fmt = detect_format(path, "auto")
    if fmt not in TABLE_FORMATS:
        raise TaawunError(f"{path}: give a JSONL, CSV/TSV or Parquet file of articles")
    if fmt == "parquet":
        return _parquet_rows(path)
    lines = _open_lines(path)
    return iter_rows(lines, fmt, path, lines.bad)


def check_columns(path: Path, present: Iterable[str], column: dict[str, str], required: Iterable[str],
                  why: dict[str, str] | None = None, mapped: Iterable[str] = ()) -> None:
    """Every required key's column must be in the file; the error names the key, the column and the file's columns.

    `mapped` holds the keys the user mapped with --field: the error then names that option.
    """
    present = set(present)
    for key in required:
        if column[key] in present:
            continue
        if key in mapped:
            raise TaawunError(f"{path}: no column {column[key]!r} for {key} (mapped by --field {key}={column[key]}); "
                              f"the file's columns: {sorted(present)}")
        reason = (why or {}).get(key, "")
        raise TaawunError(f"{path}: no column {column[key]!r} for {key}{reason}; map it with --field "
                          f"{key}=COLUMN (columns: {sorted(present)})")


class ArticleReader:
    """Iterate (line, {key: text}) over the readable records of a file; unreadable ones go to `malformed`.

    `fields` is the user's --field mapping over `keys` (see field_columns); the columns of the `required` keys and of
    every mapped key are checked against the first readable record, whose columns become `present`.
    """

    def __init__(self, path: Path, fields: dict[str, str], keys: Iterable[str], required: Iterable[str],
                 why: dict[str, str] | None = None):
        self.path = Path(path)
        self.fields = fields
        self.column = field_columns(fields, keys)
        self.required = list(dict.fromkeys([*required, *fields]))
        self.why = why
        self.present: set[str] = set()
        self.malformed: list[str] = []

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        checked = False
        for row in stream_rows(self.path):
            if row.error:
                self.malformed.append(f"{self.path}:{row.line}: {row.error}; skipped")
                continue
            if not checked:
                self.present = set(row.values)
                check_columns(self.path, self.present, self.column, self.required, self.why, self.fields)
                checked = True
            yield row.line, {key: as_text(row.values.get(name)) for key, name in self.column.items()}


def label_indices(path: Path, records: list[tuple[int, dict[str, str]]], tasks: list[Task],
                  whose: str) -> dict[str, list[int]]:
    """Each task's label per record of an ArticleReader, as an index into the task's labels (-1 where the cell is
    empty), aliases applied. Labels none of the task's are reported together, each with its line and the nearest
    label; `whose` says whose labels the tasks' are ("the model's", "the schema's")."""
    labels, problems = {}, []
    for task in tasks:
        values = []
        for line, record in records:
            raw = record[task.name].strip()
            label = task.resolve(raw) if raw else None
            if raw and label is None:
                problems.append(f"{path}:{line}: unknown {task.name} label {raw!r}; did you mean "
                                f"{task.suggest(raw)!r}? {whose.capitalize()} labels: {task.label_names}")
            values.append(task.label_names.index(label) if label else -1)
        labels[task.name] = values
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise TaawunError(f"labels that are not {whose} (add aliases to the schema, or fix the file):\n  "
                          + "\n  ".join(problems[:20]) + more)
    return labels


def _open_lines(source: Path) -> Lines:
    """The file's text lines (gunzipped when compressed), in the encoding detected from its first bytes."""
    with open(source, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(source, "rb") if compressed else open(source, "rb")  # noqa: SIM115 (Lines closes it)
    try:
        head = raw.read(SNIFF_BYTES)
        raw.seek(0)
        encoding = detect_encoding(head, "auto", source, complete=len(head) < SNIFF_BYTES)
    except BaseException:
        raw.close()
        raise
    return Lines(raw, encoding, source)


def _parquet_rows(source: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(source)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise TaawunError(f"{source}: not a readable Parquet file ({err})") from None
    number = 0
    for batch in handle.iter_batches(batch_size=5000):
        for values in batch.to_pylist():
            number += 1
            yield Row(number, values)
