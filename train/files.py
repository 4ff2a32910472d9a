"""Writing outputs atomically: into a temporary file beside the target, then one rename over it.

A reader never sees half a file, and an interrupted write leaves the previous version (or nothing) in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def staging_path(path: Path, kind: str = "tmp") -> Path:
    """A hidden name beside `path` for this process: `.name.tmp-PID`."""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", **options: Any) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(path)
    if "b" not in mode:
        options = {"encoding": "utf-8", **options}
    try:
        with open(staging, mode, **options) as handle:
            yield handle
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write UTF-8 text to `path` atomically."""
    with atomic_file(path) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomically(path: str | Path, value: Any) -> Path:
    """Write JSON (UTF-8, Arabic kept readable, indented) to `path` atomically."""
    return write_text_atomically(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
