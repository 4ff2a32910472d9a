"""The files a dataset is built from, recorded when it is built, so a dataset whose inputs changed is rebuilt.

Articles, annotations, adjudications, the schema and its gazetteers are each recorded with their size, modification
time and SHA-256. A check compares size and modification time first and hashes only the files where those differ:
touching a file without changing it does not force a rebuild.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from train.config.loading import read_yaml
from train.data.config import DataConfig
from train.errors import TaawunError


def input_files(config: DataConfig) -> list[Path]:
    """Every file a build of `config` reads: the sources (each file of a folder source), annotations, the schema and
    its gazetteers (the dataset keeps copies of them)."""
    paths: list[Path] = []
    for source in config.sources:
        if source.path.is_dir():
            paths += sorted(path for path in source.path.rglob("*") if path.is_file())
        else:
            paths.append(source.path)
    paths += [annotation.path for annotation in config.annotations]
    paths.append(config.schema_path)
    return paths + _gazetteer_files(config.schema_path)


def _gazetteer_files(schema_path: Path) -> list[Path]:
    """The gazetteer files a schema file declares (relative to it); none when it cannot be read (the build says why)."""
    try:
        declared = read_yaml(schema_path).get("gazetteers") or {}
        return [schema_path.parent / relative for relative in declared.values()]
    except (TaawunError, AttributeError, TypeError, OSError):
        return []


def record_inputs(config: DataConfig) -> dict[str, dict[str, Any]]:
    """Size, modification time and SHA-256 of each input file, by path as the config names it.

    A missing file is left out: the build itself reports it.
    """
    return {str(path): {**_stat(path), "sha256": _sha256(path)} for path in input_files(config) if path.is_file()}


def changed_inputs(recorded: dict[str, dict[str, Any]], config: DataConfig) -> list[str]:
    """The inputs that differ from `recorded`: edited, new (marked so) or gone (marked so)."""
    current = {str(path): path for path in input_files(config) if path.is_file()}
    changed = [f"{name} (gone)" for name in recorded if name not in current]
    for name, path in current.items():
        before = recorded.get(name)
        if before is None:
            changed.append(f"{name} (new)")
        elif _stat(path) != {key: before.get(key) for key in ("size", "mtime_ns")} and (
                _sha256(path) != before.get("sha256")):
            changed.append(name)
    return changed


def _stat(path: Path) -> dict[str, int]:
    status = path.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
