"""Reading a raw article table whose columns `--field KEY=COLUMN` maps: the one reader behind `taawun evaluate`,
`taawun predict` and `taawun annotate suggest`.

JSONL, CSV/TSV (plain or .gz) and Parquet files are streamed row by row, so a large news archive is never held whole.
A key is an article field (`id`, `text`, `title`), a target field of the model's tasks, or (for evaluation) a task
name; by default it reads the column of the same name. A record that cannot be read is reported with its line.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from train.data.readers import Row, as_text, detect_format, iter_rows, sniff_encoding
from train.errors import TaawunError

ARTICLE_KEYS = ("id", "text", "title")
TABLE_FORMATS = ("jsonl", "csv", "tsv", "parquet")


def parse_fields(pairs: Iterable[str]) -> dict[str, str]:
    """`--field key=column` options as a mapping."""
    fields = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise TaawunError(f"--field {pair!r}: write KEY=COLUMN, e.g. --field topic=label or --field text=body")
        fields[key.strip()] = column.strip()
    return fields


def field_columns(fields: dict[str, str], keys: Iterable[str]) -> dict[str, str]:
    """key -> column for every key the reader knows: the user's mapping, else the column of the same name."""
    return {key: fields.get(key, key) for key in dict.fromkeys(keys)}


def stream_rows(path: Path) -> Iterator[Row]:
    """The rows of a JSONL, CSV/TSV (plain or .gz) or Parquet file, one at a time."""
    if not path.is_file():
        raise TaawunError(f"{path}: no such file")
    fmt = detect_format(path, "auto")
    if fmt not in TABLE_FORMATS:
        raise TaawunError(f"{path}: give a JSONL, CSV/TSV or Parquet file of articles")
    if fmt == "parquet":
        return _parquet_rows(path)
    return iter_rows(_open_text(path), fmt, path)


def check_columns(path: Path, present: Iterable[str], column: dict[str, str], required: Iterable[str],
                  why: dict[str, str] | None = None) -> None:
    """Every required key's column must be in the file; the error names the key, the column and the file's columns."""
    present = set(present)
    for key in required:
        if column[key] not in present:
            reason = (why or {}).get(key, "")
            raise TaawunError(f"{path}: no column {column[key]!r} for {key}{reason}; map it with --field "
                              f"{key}=COLUMN (columns: {sorted(present)})")


class ArticleReader:
    """Iterate (line, {key: text}) over the readable records of a file; unreadable ones go to `malformed`.

    The required keys' columns are checked against the first readable record, whose columns become `present`.
    """

    def __init__(self, path: Path, column: dict[str, str], required: Iterable[str], why: dict[str, str] | None = None):
        self.path = Path(path)
        self.column = column
        self.required = list(required)
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
                check_columns(self.path, self.present, self.column, self.required, self.why)
                checked = True
            yield row.line, {key: as_text(row.values.get(name)) for key, name in self.column.items()}


def _open_text(source: Path) -> io.TextIOWrapper:
    """A text stream over the file (gunzipped when compressed), its encoding sniffed from the first bytes."""
    with open(source, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(source, "rb") if compressed else open(source, "rb")  # noqa: SIM115 (closed with the wrapper)
    head = raw.read(65536)
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=sniff_encoding(head), newline="")


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

