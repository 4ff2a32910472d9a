"""Reading raw articles and annotation tables: JSONL, CSV/TSV (plain or .gz), Parquet and folders of .txt files.

Every record keeps the file and line it came from, so problems can point at them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.data.config import SourceConfig
from train.errors import TaawunError


@dataclass
class Problem:
    """Something wrong with one record; `where` is `file:line`."""

    where: str
    record_id: str | None
    kind: str
    message: str

    def __str__(self) -> str:
        who = f" [{self.record_id}]" if self.record_id is not None else ""
        return f"{self.where}{who}: {self.message}"


@dataclass
class Row:
    """One record of a table-like file, with its 1-based line (or row) number."""

    line: int
    values: dict[str, Any] | None
    raw: str = ""
    error: str | None = None


@dataclass
class Article:
    """One raw article as read from a source, before cleaning."""

    id: str
    text: str
    title: str = ""
    date: str = ""
    source: str = ""
    where: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    annotator: str = "inline"
    forced_split: str | None = None


def decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """Decode file bytes; `auto` detects UTF-8 (with or without BOM), UTF-16 (BOM) and Windows-1256.

    Returns the text and the encoding used.
    """
    if encoding == "auto":
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16"), "utf-16"
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # Not UTF-8: the legacy Arabic code page is the only other encoding Arabic news files come in here.
            encoding = "windows-1256"
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8" else "cp1256"), encoding
    except UnicodeDecodeError as err:
        raise TaawunError(
            f"{path}: cannot be decoded as {encoding} (byte {err.start}); set `encoding:` to the file's encoding"
        ) from None


def sniff_encoding(head: bytes) -> str:
    """The Python codec for a file starting with `head`, by the same rules as `decode(..., "auto")`."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the sample
            return "cp1256"
    return "utf-8"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip-compressed."""
    if not path.exists():
        raise TaawunError(f"{path}: no such file or folder. Paths in a data config are relative to where you run.")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise TaawunError(f"{path}: corrupt gzip file ({err}); re-download or re-compress it") from None
    return data


def detect_format(path: Path, declared: str) -> str:
    """The file format: the declared one, else from the extension (a trailing .gz is ignored)."""
    if declared != "auto":
        return declared
    if path.is_dir():
        return "txt_folder"
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    by_suffix = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
                 ".parquet": "parquet"}
    if suffixes and suffixes[-1] in by_suffix:
        return by_suffix[suffixes[-1]]
    raise TaawunError(
        f"{path}: cannot tell the format from the extension; set `format:` to jsonl, csv, tsv, parquet or txt_folder"
    )


def read_rows(path: Path, fmt: str, encoding: str) -> tuple[list[Row], str]:
    """Read a JSONL, CSV/TSV or Parquet file into rows; returns them and the encoding used."""
    if fmt == "parquet":
        return _parquet_rows(path), "parquet"
    text, used = decode(read_bytes(path), encoding, path)
    return list(iter_rows(io.StringIO(text, newline=""), fmt, path)), used


def iter_rows(stream: Iterable[str], fmt: str, path: Path) -> Iterator[Row]:
    """Rows of a JSONL or CSV/TSV text stream, one at a time (for files too large to hold)."""
    if fmt == "jsonl":
        return _jsonl_rows(stream)
    return _csv_rows(stream, "\t" if fmt == "tsv" else ",", path)


def _jsonl_rows(lines: Iterable[str]) -> Iterator[Row]:
    # Read with newline="": only \n and \r end a line, never U+2028 or U+0085 inside a JSON string.
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as err:
            yield Row(number, None, line, f"malformed JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(values, dict):
            yield Row(number, None, line, f"expected a JSON object, got {type(values).__name__}")
            continue
        yield Row(number, values, line)


def _csv_rows(stream: Iterable[str], delimiter: str, path: Path) -> Iterator[Row]:
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise TaawunError(f"{path}:1: cannot read the header row: {err}") from None
    header = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield Row(start, None, "", f"malformed CSV ({err})")
            start = reader.line_num + 1
            continue
        if cells and any(cell.strip() for cell in cells):
            if len(cells) != len(header):
                yield Row(start, None, delimiter.join(cells), f"{len(cells)} fields where the header has {len(header)}")
            else:
                yield Row(start, dict(zip(header, cells, strict=True)), delimiter.join(cells))
        start = reader.line_num + 1


def _parquet_rows(path: Path) -> list[Row]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise TaawunError(f"{path}: no such file. Paths in a data config are relative to where you run.")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise TaawunError(f"{path}: not a readable Parquet file ({err})") from None
    return [Row(number, values) for number, values in enumerate(table.to_pylist(), start=1)]


def as_text(value: Any) -> str:
    """A cell value as a string: None and NaN become empty, other values str()."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_source(source: SourceConfig) -> tuple[list[Article], list[Problem], dict[str, Any]]:
    """Read one source's articles; returns them, the records that could not be read, and facts for the report."""
    path = source.path
    fmt = detect_format(path, source.format)
    if fmt == "txt_folder":
        articles, used = _read_txt_folder(source)
        return articles, [], {"name": source.display_name, "path": str(path), "format": fmt, "encodings": used,
                              "records": len(articles)}
    rows, used = read_rows(path, fmt, source.encoding)
    _check_columns(source, rows, path)
    articles, problems = [], []
    for row in rows:
        where = f"{path}:{row.line}"
        if row.error:
            problems.append(Problem(where, None, "unreadable", row.error))
            continue
        articles.append(_article_from_row(source, row, where))
    facts = {"name": source.display_name, "path": str(path), "format": fmt, "encodings": [used],
             "records": len(rows)}
    return articles, problems, facts


def _check_columns(source: SourceConfig, rows: list[Row], path: Path) -> None:
    """A mapped column missing from every record is a config error, not thousands of record errors."""
    seen: set[str] = set()
    for row in rows:
        if row.values:
            seen.update(row.values)
    if not seen:
        return
    fields = source.fields
    wanted = {f"fields.{key}": column for key, column in fields.model_dump().items() if column is not None}
    wanted |= {f"labels.{task}": column for task, column in source.labels.items()}
    wanted |= {f"targets.{name}": column for name, column in source.targets.items()}
    for key, column in wanted.items():
        if column not in seen:
            hint = "; set it to null if the source has no such field" if key in ("fields.title", "fields.date",
                                                                            "fields.source", "fields.id") else ""
            raise TaawunError(
                f"{path}: column {column!r} (mapped by `{key}` of source {source.display_name!r}) is not in the "
                f"file; its columns are {sorted(seen)}{hint}"
            )


def _article_from_row(source: SourceConfig, row: Row, where: str) -> Article:
    values = row.values or {}
    fields = source.fields
    record_id = as_text(values.get(fields.id)) if fields.id else f"{source.display_name}:{row.line}"
    labels = {task: as_text(values.get(column)) for task, column in source.labels.items()}
    return Article(
        id=record_id.strip(),
        text=as_text(values.get(fields.text)),
        title=as_text(values.get(fields.title)) if fields.title else "",
        date=as_text(values.get(fields.date)).strip() if fields.date else "",
        source=(as_text(values.get(fields.source)) if fields.source else "") or source.outlet or "",
        where=where,
        labels={task: label for task, label in labels.items() if label.strip()},
        targets={name: as_text(values.get(column)) for name, column in source.targets.items()},
        annotator=source.annotator,
        forced_split=source.split,
    )


def _read_txt_folder(source: SourceConfig) -> tuple[list[Article], list[str]]:
    """A folder with one sub-folder of .txt files per label (the label goes to `folder_task`, when set)."""
    root = source.path
    if not root.is_dir():
        raise TaawunError(f"{root}: not a folder; a txt_folder source is a folder with one sub-folder per label")
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise TaawunError(f"{root}: no .txt files found (expected {root}/<label>/<article>.txt)")
    articles, encodings = [], set()
    for file in files:
        text, used = decode(read_bytes(file), source.encoding, file)
        encodings.add(used)
        relative = file.relative_to(root)
        label = relative.parts[0] if len(relative.parts) > 1 else ""
        labels = {source.folder_task: label} if source.folder_task and label else {}
        articles.append(Article(id=relative.with_suffix("").as_posix(), text=text, source=source.outlet or "",
                                where=f"{file}:1", labels=labels, annotator=source.annotator))
    return articles, sorted(encodings)
