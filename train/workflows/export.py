"""`taawun export`: a transformer model as a Hugging Face classifier folder (one task), or as ONNX (every task).

The export folder is written beside its destination and renamed into place; an existing folder is replaced only when
it is an earlier export (it holds `taawun_export.json`), never a folder of something else.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train import __version__
from train.errors import TaawunError
from train.files import staging_path, write_json_atomically
from train.models.predictor import Predictor, load_predictor
from train.schema import Task

EXPORT_FILE = "taawun_export.json"
FORMATS = ("hf", "onnx")
# What taawun does around the network, which neither export does: the caller's part (README: Exporting).
NOT_INCLUDED = ["cleaning and normalization (preprocessing.cleaning, preprocessing.normalization)",
                "AraBERT preprocessing (preprocessing.arabert)", "joining title and text with a newline",
                "head-and-tail truncation or chunks (truncation): a pipeline cuts at max_length",
                "decision thresholds of binary tasks (threshold)",
                "applies_when: a task's label where it does not apply"]


@dataclass
class ExportSummary:
    """Where an export went, in which format, with which tasks."""

    output: Path
    format: str
    tasks: list[str]


def export_model(reference: str, fmt: str, output: Path, task: str | None = None,
                 tracking_uri: str | None = None) -> ExportSummary:
    """Export a transformer model: `hf` writes `task`'s BertForSequenceClassification, `onnx` every task's logits."""
    if fmt not in FORMATS:
        raise TaawunError(f"--format {fmt!r}: choose one of {list(FORMATS)}")
    predictor = load_predictor(reference, tracking_uri)
    if predictor.model.kind != "transformer":
        raise TaawunError(f"{reference} is a {predictor.model.kind} model: only the transformer kind exports (to "
                          "Hugging Face or ONNX). Serve this one with `mlflow models serve -m runs:/<run id>/model`, "
                          "or score files with `taawun predict`")
    tasks = _export_tasks(predictor, fmt, task)
    if fmt == "onnx":
        _require_onnx()
    from train.models.transformer.export import save_hf, save_onnx

    with replacing_folder(output, EXPORT_FILE) as staging:
        if fmt == "hf":
            save_hf(predictor.model, tasks[0], staging)
        else:
            save_onnx(predictor.model, staging)
        write_json_atomically(staging / EXPORT_FILE, _manifest(predictor, fmt, tasks, reference))
    return ExportSummary(output, fmt, [t.name for t in tasks])


def _export_tasks(predictor: Predictor, fmt: str, name: str | None) -> list[Task]:
    """The one task a Hugging Face classifier holds, or every task for ONNX."""
    names = [t.name for t in predictor.tasks]
    if fmt == "onnx":
        if name:
            raise TaawunError(f"--task applies to --format hf; the ONNX export holds every task's logits ({names})")
        return predictor.tasks
    if not name:
        raise TaawunError(f"--format hf exports one task: add --task, one of {names}")
    if name not in names:
        raise TaawunError(f"--task {name!r}: the model has no such task; its tasks: {names}")
    return [t for t in predictor.tasks if t.name == name]


def _require_onnx() -> None:
    """torch's ONNX exporter needs onnxscript (and onnx); say how to install them rather than fail inside torch."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise TaawunError(f"--format onnx needs the `{err.name}` package: pip install 'taawun[export]'") from None


def _manifest(predictor: Predictor, fmt: str, tasks: list[Task], reference: str) -> dict[str, Any]:
    """What the export holds and what a user must do around it: labels, outputs, preprocessing, thresholds."""
    from train.models.transformer.export import onnx_outputs
    from train.models.transformer.preprocess import arabert_name

    config = predictor.model.config
    thresholds = predictor.info.get("thresholds") or {}
    outputs = onnx_outputs(tasks) if fmt == "onnx" else [None] * len(tasks)
    return {
        "format": fmt, "model": str(reference), "taawun_version": __version__,
        "tasks": {task.name: {"labels": task.label_names, "onnx_output": output, "positive": task.positive_label,
                              "threshold": thresholds.get(task.name), "target_field": task.target_field}
                  for task, output in zip(tasks, outputs, strict=True)},
        "max_length": config.max_length, "truncation": config.truncation, "head_tokens": config.head_tokens,
        "preprocessing": {"cleaning": predictor.preprocessing["cleaning"],
                          "normalization": predictor.preprocessing["normalization"],
                          "arabert": arabert_name(config), "use_title": config.use_title},
        "not_included": NOT_INCLUDED,
    }


def check_replaceable(output: Path, marker: str) -> None:
    """`output` may be written: it does not exist, is empty, or holds `marker` (an earlier output of the command)."""
    if output.is_file() or (output.is_dir() and any(output.iterdir()) and not (output / marker).exists()):
        raise TaawunError(f"{output} exists and is not an earlier output of this command (no {marker}); give a new "
                          "folder, or remove it first")


@contextmanager
def replacing_folder(output: Path, marker: str) -> Iterator[Path]:
    """A new folder beside `output`, renamed to `output` when the block succeeds, removed when it fails.

    An existing `output` is replaced only when it holds `marker` (an earlier output of the same command) or is empty.
    """
    output = Path(output)
    check_replaceable(output, marker)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging, old = staging_path(output), staging_path(output, "old")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        yield staging
        if output.exists():
            os.replace(output, old)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
