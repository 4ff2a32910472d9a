"""A built dataset on disk: its features, content fingerprint and settings, written atomically.

The folder holds the `DatasetDict` (`save_to_disk`), `taawun.json` (the schema, cleaning and normalization settings a
model needs to treat new text the same way), `report.json` and `report.md`, `rejects.jsonl` and `disagreements.csv`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from train import __version__
from train.data.annotations import Merged
from train.data.config import DataConfig
from train.data.splits import SPLITS
from train.errors import TaawunError
from train.files import staging_path
from train.schema import Schema

PREPROCESSING_FILE = "taawun.json"
REPORT_FILE = "report.json"


def features_for(schema: Schema):
    """The dataset's features: text columns, one ClassLabel per task (schema label order), target columns."""
    import datasets

    columns = {name: datasets.Value("string") for name in
               ("id", "title", "text", "raw_title", "raw_text", "date", "source", "origin")}
    columns["cluster"] = datasets.Value("int64")
    for task in schema.tasks:
        columns[task.name] = datasets.ClassLabel(names=task.label_names)
        if task.target_field:
            columns[task.target_field] = datasets.Value("string")
    return datasets.Features(columns)



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
        for row in zip(*columns, strict=True):
            digest.update("\x1f".join(map(str, row)).encode("utf-8") + b"\x1e")
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



def write_dataset(output: Path, dataset, report, rejects, merged: Merged, schema: Schema, config) -> None:
    """Write everything into a temporary folder beside `output`, then swap it in: never a half-written dataset."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(output)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        # datasets 5 cannot load back an empty split saved with zero shards: give empty splits one.
        dataset.save_to_disk(str(staging), num_shards={name: 1 for name, split in dataset.items() if not len(split)})
        _write_side_files(staging, report, rejects, merged, config, schema)
        _swap(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)



def _write_side_files(folder: Path, report, rejects, merged: Merged, config: DataConfig, schema: Schema) -> None:
    from train.data.report import render_markdown

    (folder / PREPROCESSING_FILE).write_text(
        json.dumps(preprocessing_settings(config, schema), ensure_ascii=False, indent=2), encoding="utf-8")
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
