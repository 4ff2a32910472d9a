"""A built dataset on disk: its features, content fingerprint and settings, written atomically.

The folder holds the `DatasetDict` (`save_to_disk`), `taawun.json` (the schema, cleaning and normalization settings a
model needs to treat new text the same way, and the input files it was built from), `report.json` and `report.md`,
`rejects.jsonl` and `disagreements.csv`.

A build writes into `.NAME.tmp-PID` beside the output, moves the old dataset to `.NAME.old-PID`, renames the new one
into place and removes the old one, holding `.NAME.lock`. A build killed on the way leaves those folders; the next
build (or opening the dataset) restores the old dataset when the output is missing and removes the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from train import __version__
from train.data.annotations import Merged
from train.data.config import DataConfig
from train.data.splits import SPLITS
from train.errors import TaawunError
from train.files import staging_path
from train.schema import Schema, save_gazetteers

PREPROCESSING_FILE = "taawun.json"
REPORT_FILE = "report.json"


def features_for(schema: Schema):
    """The dataset's features: text columns, one ClassLabel per task (schema label order), target columns."""
    import datasets

    columns = {name: datasets.Value("string") for name in
               ("id", "title", "text", "raw_title", "raw_text", "date", "source", "origin")}
    columns["cluster"] = datasets.Value("int64")
    columns["weight"] = datasets.Value("float32")  # the source's sample weight in training
    columns["auxiliary"] = datasets.Value("bool")  # from an auxiliary source: training data only
    for task in schema.tasks:
        columns[task.name] = datasets.ClassLabel(names=task.label_names)
        if task.target_field:
            columns[task.target_field] = datasets.Value("string")
    return datasets.Features(columns)



def _weight_marks(split) -> list[bytes]:
    """Per row, its weight and auxiliary mark when they are not the defaults (so plain datasets keep their digest)."""
    if "weight" not in split.column_names:
        return [b""] * len(split)
    return [(f"\x1fw{weight:g}".encode() if weight != 1 else b"") + (b"\x1faux" if auxiliary else b"")
            for weight, auxiliary in zip(split["weight"], split["auxiliary"], strict=True)]


def split_stats(dataset, schema: Schema) -> dict[str, Any]:
    """Articles, label counts per task, and text lengths (characters and words) per split."""
    import numpy as np

    stats = {}
    for name, split in dataset.items():
        texts = split["text"]
        labels = {}
        for task in schema.tasks:
            counts = Counter(split[task.name])
            labels[task.name] = {label: counts.get(i, 0) for i, label in enumerate(task.label_names)}
            if counts.get(-1):
                labels[task.name]["(none)"] = counts[-1]
        chars = np.array([len(t) for t in texts]) if texts else np.zeros(1)
        words = np.array([len(t.split()) for t in texts]) if texts else np.zeros(1)
        stats[name] = {"articles": len(split), "labels": labels,
                       "chars": _summary(chars), "words": _summary(words)}
        if "auxiliary" in split.column_names and any(split["auxiliary"]):
            stats[name]["auxiliary"] = int(sum(split["auxiliary"]))
    return stats



def _summary(values) -> dict[str, float]:
    import numpy as np

    return {"min": int(values.min()), "median": float(np.median(values)), "mean": round(float(values.mean()), 1),
            "max": int(values.max())}



def fingerprint(dataset, schema: Schema) -> str:
    """A SHA-256 of the dataset's content (splits, ids, texts, labels): equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for name in SPLITS:
        split = dataset[name]
        columns = [split["id"], split["title"], split["text"]] + [split[task] for task in schema.task_names]
        digest.update(f"\x1d{name}".encode())
        extras = _weight_marks(split)
        for row, extra in zip(zip(*columns, strict=True), extras, strict=True):
            digest.update("\x1f".join(map(str, row)).encode("utf-8") + extra + b"\x1e")
    return digest.hexdigest()



def preprocessing_settings(config: DataConfig, schema: Schema) -> dict[str, Any]:
    """What a model needs to treat new text exactly as the training text: cleaning, normalization, schema."""
    return {
        "taawun_version": __version__,
        "config_digest": config_digest(config),
        "cleaning": config.cleaning.model_dump(mode="json"),
        "normalization": config.normalization.model_dump(mode="json"),
        "schema": schema.model_dump(mode="json"),
    }



def config_digest(config: DataConfig) -> str:
    """A digest of the data config, so a dataset built from another version of it can be told apart."""
    return hashlib.sha256(config.model_dump_json().encode("utf-8")).hexdigest()[:16]



def write_dataset(output: Path, dataset, report, rejects, merged: Merged, schema: Schema, config, inputs) -> None:
    """Write everything into a temporary folder beside `output`, then swap it in: never a half-written dataset.

    `inputs` (from `train.data.inputs.record_inputs`) is saved in `taawun.json`, to tell when the dataset is stale.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(output)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        # datasets 5 cannot load back an empty split saved with zero shards: give empty splits one.
        dataset.save_to_disk(str(staging), num_shards={name: 1 for name, split in dataset.items() if not len(split)})
        _write_side_files(staging, report, rejects, merged, config, schema, inputs)
        _swap(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)



def _write_side_files(folder: Path, report, rejects, merged: Merged, config: DataConfig, schema: Schema,
                      inputs) -> None:
    from train.data.report import render_markdown

    settings = {**preprocessing_settings(config, schema), "inputs": inputs}
    (folder / PREPROCESSING_FILE).write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
    save_gazetteers(schema, folder)
    with open(folder / "rejects.jsonl", "w", encoding="utf-8") as handle:
        for reject in rejects:
            handle.write(json.dumps(reject, ensure_ascii=False) + "\n")
    _write_disagreements(folder / "disagreements.csv", merged)
    (folder / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")



def _write_disagreements(path: Path, merged: Merged) -> None:
    """Every article and task the annotators disagreed on; the file doubles as an adjudication template."""
    import csv

    annotators = merged.annotators
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "task", *annotators, "resolution", "final"])
        for item in merged.disagreements:
            votes = [item["votes"].get(a, "") for a in annotators]
            writer.writerow([item["id"], item["task"], *votes, item["resolution"], item["final"] or ""])



def _swap(staging: Path, output: Path) -> None:
    """Replace `output` by `staging` with renames; an existing dataset is kept until the new one is in place."""
    if output.exists() and not (output / "dataset_dict.json").exists():
        raise TaawunError(f"{output}: exists and is not a dataset built by taawun; choose another `output:`")
    backup = staging_path(output, "old")
    if output.exists():
        output.rename(backup)
    staging.rename(output)
    shutil.rmtree(backup, ignore_errors=True)



@contextmanager
def build_lock(output: Path, wait: bool) -> Iterator[None]:
    """Hold the lock on building `output` (`.NAME.lock` beside it, locked with flock).

    When another process holds it: with `wait`, say so and wait; else fail, naming that process. The lock dies
    with its process, so a killed build never blocks the next one.
    """
    import fcntl

    path = output.with_name(f".{output.name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(path)
            if not wait:
                handle.close()
                raise TaawunError(f"{output} is being built by another taawun process (pid {holder}); wait for it "
                                  "to finish (or stop it), then run again") from None
            print(f"waiting for taawun (pid {holder}) to finish building {output} ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        if _is_current(handle, path):
            break
        handle.close()  # the holder removed the lock file as it let go; lock the one there now
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: whoever opened this file checks it is still current
        handle.close()



def _lock_holder(path: Path) -> str:
    """The pid written in a lock file (its holder writes it just after locking: allow it a moment)."""
    for _ in range(20):
        try:
            holder = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            holder = ""
        if holder:
            return holder
        time.sleep(0.05)
    return "unknown"



def _is_current(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False



def restore_interrupted(output: Path) -> None:
    """Repair what interrupted builds left beside `output`, if anything (waiting for a build in progress)."""
    output = Path(output)
    if _leftovers(output):
        with build_lock(output, wait=True):
            recover(output)



def recover(output: Path) -> None:
    """Restore the previous dataset when a killed build left `output` missing; remove what dead builds left.

    Call it holding `build_lock`. A folder of a process that is still running is left alone.
    """
    stale = [(path, kind) for path, kind, pid in _leftovers(output) if pid == os.getpid() or not _alive(pid)]
    backups = sorted((path for path, kind in stale if kind == "old" and (path / "dataset_dict.json").is_file()),
                     key=lambda path: path.stat().st_mtime, reverse=True)
    if not output.exists() and backups:
        backups[0].rename(output)
        print(f"restored {output} from {backups[0].name} (a build was killed while swapping datasets)",
              file=sys.stderr)
    for path, _ in stale:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            print(f"removed {path.name}, left by an interrupted build of {output}", file=sys.stderr)



def _leftovers(output: Path) -> list[tuple[Path, str, int]]:
    """The staging (`tmp`) and backup (`old`) folders of builds of `output`, with the pid that made each."""
    if not output.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(output.name)}\.(tmp|old)-(\d+)")
    return [(path, match[1], int(match[2])) for path in output.parent.iterdir()
            if (match := pattern.fullmatch(path.name)) and path.is_dir()]



def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
