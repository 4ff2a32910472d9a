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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

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
    kind: str = "unreadable"


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
    weight: float = 1.0
    auxiliary: bool = False


# The `encoding:` values a file is read in (and the detected byte orders of UTF-16), with their Python codecs.
CODECS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf-16-le": "utf-16-le",
          "utf-16-be": "utf-16-be", "windows-1256": "cp1256", "iso-8859-6": "iso8859_6"}
_CODE_PAGES = {"cp1256": "windows-1256", "iso8859_6": "iso-8859-6"}  # charset-normalizer's names -> ours
_DETECTOR_SAMPLE = 1 << 18  # bytes of legacy lines enough for charset-normalizer to tell the code pages apart
SETTINGS = "utf-8, utf-16, windows-1256 or iso-8859-6"


def detect_encoding(sample: bytes, declared: str, path: Path, complete: bool = True) -> str:
    """The encoding (a key of CODECS) to read a file in, from its first bytes, or all of them when `complete`.

    A declared encoding is used as given (a BOM still decides between UTF-8 and UTF-8 with BOM, and the byte order of
    UTF-16). Otherwise: a BOM decides; NUL bytes mean UTF-16 (byte order detected); a file is UTF-8 when at least as
    many of its lines with non-ASCII bytes are valid UTF-8 as not (the others are reported one by one: one bad line
    never re-decodes the file); else it is in the Arabic code page charset-normalizer finds, or refused.
    """
    if declared in ("auto", "utf-8") and sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if declared in ("auto", "utf-16") and sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if declared == "utf-16":
        return _utf16_order(sample)
    if declared != "auto":
        return declared
    if b"\x00" in sample:  # UTF-16 of Arabic and ASCII text is often valid UTF-8 too: look for it first
        utf16 = _utf16_detected(sample)
        if utf16:
            return utf16
        if sample.count(0) * 10 > len(sample):  # not a few NULs inside lines, which those lines' records report
            _refuse(sample, path)
    if is_utf8(sample, cut=not complete):
        return "utf-8"
    lines = sample.splitlines()
    non_ascii = [(number, line) for number, line in enumerate(lines, start=1) if not line.isascii()]
    legacy = [line for number, line in non_ascii if not is_utf8(line, cut=not complete and number == len(lines))]
    if 2 * len(legacy) <= len(non_ascii):
        return "utf-8"
    return _code_page(legacy, path)


def is_utf8(line: bytes, cut: bool = False) -> bool:
    """Whether `line` is valid UTF-8; with `cut`, a character cut off at its end (by sampling) does not count."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return cut and err.reason == "unexpected end of data"
    return True


def _utf16_order(sample: bytes) -> str:
    """The byte order of BOM-less UTF-16: ASCII characters put their zero byte second in little-endian."""
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    return "utf-16-be" if even > odd else "utf-16-le"


def _utf16_detected(sample: bytes) -> str | None:
    """BOM-less UTF-16 and its byte order, when charset-normalizer finds it; else None."""
    import charset_normalizer

    match = charset_normalizer.from_bytes(sample, cp_isolation=["utf_16_le", "utf_16_be"]).best()
    if match is None:
        return None
    return "utf-16-le" if match.encoding == "utf_16_le" else "utf-16-be"


def _code_page(legacy: list[bytes], path: Path) -> str:
    """The Arabic code page of a file's non-UTF-8 lines, by charset-normalizer."""
    import charset_normalizer

    sample, size = [], 0
    for line in legacy:
        sample.append(line)
        size += len(line)
        if size > _DETECTOR_SAMPLE:
            break
    sample_bytes = b"\n".join(sample)
    match = charset_normalizer.from_bytes(sample_bytes, cp_isolation=list(_CODE_PAGES)).best()
    if match is None:
        _refuse(sample_bytes, path)
    return _CODE_PAGES[match.encoding]


def _refuse(sample: bytes, path: Path) -> None:
    import charset_normalizer

    guess = charset_normalizer.from_bytes(sample).best()
    looks = f"it looks like {guess.encoding}" if guess else "charset-normalizer cannot tell its encoding"
    raise TaawunError(f"{path}: not in UTF-8, UTF-16, Windows-1256 or ISO-8859-6 ({looks}); convert it to UTF-8, "
                      f"or set `encoding:` ({SETTINGS}) if it is in one of them")


class Lines:
    """The text lines of a binary stream in one encoding (a key of CODECS), one at a time, ends kept.

    A line that is not in that encoding, or a UTF-8 line in a code-page file, is still yielded (bad bytes as U+FFFD)
    and noted in `bad` (line number -> why), so that its record alone is reported. Lines end at \\n, \\r or \\r\\n,
    as text streams opened with newline="" split them.
    """

    def __init__(self, stream: BinaryIO, encoding: str, path: Path):
        self.stream = stream
        self.encoding = encoding
        self.path = path
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        with self.stream:
            if self.encoding.startswith("utf-16"):
                yield from self._utf16()
                return
            number = 0
            for chunk in self.stream:  # binary streams split at \n only
                for raw in chunk.splitlines(keepends=True):
                    number += 1
                    if number == 1 and self.encoding == "utf-8-sig":
                        raw = raw.removeprefix(codecs.BOM_UTF8)
                    yield self._decode(raw, number)

    def _decode(self, raw: bytes, number: int) -> str:
        codec = CODECS[self.encoding]
        name = "UTF-8" if codec == "utf-8" else self.encoding
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as err:
            self.bad[number] = (f"not {name} (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line), unlike "
                                f"the file's other lines: re-save this line as {name}, or set `encoding:` if the "
                                "whole file is in another encoding")
            return raw.decode(codec, errors="replace")
        if codec != "utf-8" and not raw.isascii() and is_utf8(raw):
            self.bad[number] = (f"this line is UTF-8, the file's other lines {name}: re-save it as {name}, or the "
                                "whole file as UTF-8")
        return text

    def _utf16(self) -> Iterator[str]:
        # Read whole (UTF-16 files are rare and small): a decoding error then has an offset, and so a line.
        codec, data = CODECS[self.encoding], self.stream.read()
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as err:
            line = data[:err.start].decode(codec, errors="replace").count("\n") + 1
            raise TaawunError(f"{self.path}:{line}: not valid {self.encoding} ({err.reason}); the file is damaged, or "
                              f"not UTF-16: set `encoding:` ({SETTINGS})") from None
        yield from io.StringIO(text, newline="")


def decode(data: bytes, encoding: str, path: Path) -> tuple[str, str, dict[int, str]]:
    """Decode a whole file's bytes (`encoding`: a setting or `auto`, see `detect_encoding`).

    Returns the text, the encoding used, and the lines not in it (line number -> why; their bad bytes are U+FFFD).
    """
    used = detect_encoding(data, encoding, path)
    lines = Lines(io.BytesIO(data), used, path)
    return "".join(lines), used, lines.bad


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
    raise TaawunError(f"{path}: cannot tell the format from the extension; set `format:` to jsonl, csv, tsv, parquet, "
                      "txt_folder or labelstudio")


def read_rows(path: Path, fmt: str, encoding: str) -> tuple[list[Row], str]:
    """Read a JSONL, CSV/TSV or Parquet file, or a Label Studio export's tasks, into rows and the encoding used.

    A line not in the file's encoding makes its row an error row (kind `encoding`), not a re-decoded file.
    """
    if fmt == "parquet":
        return _parquet_rows(path), "parquet"
    if fmt == "labelstudio":
        return _labelstudio_rows(path, encoding)
    data = read_bytes(path)
    used = detect_encoding(data, encoding, path)
    lines = Lines(io.BytesIO(data), used, path)
    return list(iter_rows(lines, fmt, path, lines.bad)), used


def iter_rows(lines: Iterable[str], fmt: str, path: Path, bad: Mapping[int, str] | None = None) -> Iterator[Row]:
    """Rows of a JSONL or CSV/TSV file's text lines, one at a time (for files too large to hold).

    `bad` maps the numbers of lines that could not be decoded to why (filled as `lines` is read, as Lines does).
    """
    bad = {} if bad is None else bad
    if fmt == "jsonl":
        return _jsonl_rows(lines, bad)
    return _csv_rows(lines, "\t" if fmt == "tsv" else ",", path, bad)


def _jsonl_rows(lines: Iterable[str], bad: Mapping[int, str]) -> Iterator[Row]:
    # Lines end at \n and \r only, never at U+2028 or U+0085 inside a JSON string.
    for number, line in enumerate(lines, start=1):
        if number in bad:
            yield Row(number, None, line, bad[number], kind="encoding")
            continue
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


def _csv_rows(lines: Iterable[str], delimiter: str, path: Path, bad: Mapping[int, str]) -> Iterator[Row]:
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise TaawunError(f"{path}:1: cannot read the header row: {err}") from None
    broken = _bad_lines(bad, 1, reader.line_num)
    if broken:
        raise TaawunError(f"{path}:{broken[0]}: cannot read the header row: {bad[broken[0]]}")
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
        broken = _bad_lines(bad, start, reader.line_num)
        if broken:
            yield Row(broken[0], None, delimiter.join(cells), bad[broken[0]], kind="encoding")
        elif cells and any(cell.strip() for cell in cells):
            if len(cells) != len(header):
                yield Row(start, None, delimiter.join(cells), f"{len(cells)} fields where the header has {len(header)}")
            else:
                yield Row(start, dict(zip(header, cells, strict=True)), delimiter.join(cells))
        start = reader.line_num + 1


def _bad_lines(bad: Mapping[int, str], first: int, last: int) -> list[int]:
    """The undecodable lines among `first`..`last` (the lines of one CSV record)."""
    return [number for number in range(first, last + 1) if number in bad] if bad else []


def _parquet_rows(path: Path) -> list[Row]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise TaawunError(f"{path}: no such file. Paths in a data config are relative to where you run.")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise TaawunError(f"{path}: not a readable Parquet file ({err})") from None
    return [Row(number, values) for number, values in enumerate(table.to_pylist(), start=1)]


def read_labelstudio_export(path: Path, encoding: str) -> tuple[list, str]:
    """The tasks of a Label Studio JSON export (a list of tasks), and the encoding it was read in."""
    text, used, bad = decode(read_bytes(path), encoding, path)
    if bad:  # one JSON document: a damaged line cannot be set aside
        raise TaawunError(f"{path}:{min(bad)}: {bad[min(bad)]}")
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaawunError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); expected a Label Studio JSON "
                          "export") from None
    if not isinstance(tasks, list):
        raise TaawunError(f"{path}: expected a Label Studio JSON export (a list of tasks)")
    return tasks, used


def _labelstudio_rows(path: Path, encoding: str) -> tuple[list[Row], str]:
    """A Label Studio export's tasks as rows of their `data` (the articles Label Studio was given).

    A row's `line` is the task's Label Studio id (its position in the export when it has none), so that problems
    name the task (`export.json#task 12`).
    """
    tasks, used = read_labelstudio_export(path, encoding)
    rows = []
    for position, task in enumerate(tasks, start=1):
        number = task.get("id") if isinstance(task, dict) and isinstance(task.get("id"), int) else position
        data = task.get("data") if isinstance(task, dict) else None
        if isinstance(data, dict):
            rows.append(Row(number, data))
        else:
            rows.append(Row(number, None, error=f"a task without a `data` object ({type(data).__name__}); export the "
                                                "project again as JSON"))
    return rows, used


def _where(path: Path, fmt: str, row: Row) -> str:
    """Where a record came from: `file:line`, or `export.json#task ID` for a Label Studio export."""
    return f"{path}#task {row.line}" if fmt == "labelstudio" else f"{path}:{row.line}"


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
        articles, problems, used = _read_txt_folder(source)
        return articles, problems, {"name": source.display_name, "path": str(path), "format": fmt, "encodings": used,
                                    "records": len(articles) + len(problems)}
    rows, used = read_rows(path, fmt, source.encoding)
    _check_columns(source, rows, path)
    articles, problems = [], []
    for row in rows:
        where = _where(path, fmt, row)
        if row.error:
            problems.append(Problem(where, None, row.kind, row.error))
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
    labels = map_labels(source, {task: as_text(values.get(column)) for task, column in source.labels.items()})
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
        weight=source.weight,
        auxiliary=source.auxiliary,
    )


def map_labels(source: SourceConfig, labels: dict[str, str]) -> dict[str, str]:
    """The source's labels through its `label_map`: a mapped task keeps only the labels its map names."""
    mapped = {}
    for task, label in labels.items():
        if task in source.label_map:
            label = source.label_map[task].get(label.strip(), "")
        if label.strip():
            mapped[task] = label
    return mapped


def _read_txt_folder(source: SourceConfig) -> tuple[list[Article], list[Problem], list[str]]:
    """A folder with one sub-folder of .txt files per label (the label goes to `folder_task`, when set).

    A file with a line not in its encoding is a problem at that line, not an article.
    """
    root = source.path
    if not root.is_dir():
        raise TaawunError(f"{root}: not a folder; a txt_folder source is a folder with one sub-folder per label")
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise TaawunError(f"{root}: no .txt files found (expected {root}/<label>/<article>.txt)")
    articles, problems, encodings = [], [], set()
    for file in files:
        text, used, bad = decode(read_bytes(file), source.encoding, file)
        encodings.add(used)
        relative = file.relative_to(root)
        article_id = relative.with_suffix("").as_posix()
        if bad:
            line = min(bad)
            more = f" (and {len(bad) - 1} more line(s))" if len(bad) > 1 else ""
            problems.append(Problem(f"{file}:{line}", article_id, "encoding", bad[line] + more))
            continue
        label = relative.parts[0] if len(relative.parts) > 1 else ""
        labels = map_labels(source, {source.folder_task: label} if source.folder_task and label else {})
        articles.append(Article(id=article_id, text=text, source=source.outlet or "", where=f"{file}:1",
                                labels=labels, annotator=source.annotator, weight=source.weight,
                                auxiliary=source.auxiliary))
    return articles, problems, sorted(encodings)
