"""Trained models on disk: the model folder, loading it from a path or an MLflow URI, predicting from raw text.

A model folder holds `model.json` (kind, tasks, schema, preprocessing settings) and the kind's own files. The same
cleaning and normalization the dataset applied are applied again to raw text here, so serving cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from train import __version__
from train.errors import TaawunError
from train.schema import Schema, Task

MODEL_FILE = "model.json"


class Predictor:
    """A trained model with its schema and preprocessing: raw articles in, labels and probabilities out."""

    def __init__(self, model, schema: Schema, tasks: list[Task], preprocessing: dict[str, Any], info: dict[str, Any]):
        from train.text.clean import CleaningOptions, NormalizationOptions, TextPipeline

        self.model = model
        self.schema = schema
        self.tasks = tasks
        self.preprocessing = preprocessing
        self.info = info
        self.pipeline = TextPipeline(CleaningOptions(**preprocessing["cleaning"]),
                                     NormalizationOptions(**preprocessing["normalization"]))

    @property
    def target_fields(self) -> list[str]:
        """The per-example target columns some tasks need (stance toward a claim)."""
        return [task.target_field for task in self.tasks if task.target_field]

    def clean(self, values: list[str]) -> list[str]:
        """The training-time cleaning and normalization, applied to raw strings."""
        return [self.pipeline(value or "").text for value in values]

    def predict_clean(self, titles: list[str], texts: list[str], targets: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Probabilities per task for already cleaned text (a built dataset's `title` and `text` columns)."""
        from train.models.base import Articles

        return self.model.predict_proba(Articles(titles, texts, targets))

    def predict_raw(self, titles: list[str], texts: list[str], targets: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Probabilities per task for raw text: cleaned and normalized first, as at training."""
        cleaned_targets = {name: self.clean(values) for name, values in targets.items()}
        return self.predict_clean(self.clean(titles), self.clean(texts), cleaned_targets)

    def predict_frame(self, frame):
        """MLflow pyfunc: a DataFrame with `text` (and optional `title`, target columns) -> labels and probabilities."""
        import pandas as pd

        if "text" not in frame.columns:
            raise TaawunError(f"input needs a 'text' column; got {list(frame.columns)}")
        titles = frame["title"].fillna("").astype(str).tolist() if "title" in frame.columns else [""] * len(frame)
        targets = {}
        for name in self.target_fields:
            if name not in frame.columns:
                raise TaawunError(f"input needs a {name!r} column (the target of a task); got {list(frame.columns)}")
            targets[name] = frame[name].fillna("").astype(str).tolist()
        proba = self.predict_raw(titles, frame["text"].fillna("").astype(str).tolist(), targets)
        return pd.DataFrame(label_columns(self.tasks, proba))

    def save(self, folder: Path) -> None:
        """Write the model folder."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder)
        info = {**self.info, "kind": self.model.kind, "taawun_version": __version__,
                "tasks": [task.name for task in self.tasks], "preprocessing": self.preprocessing,
                "model": self.model.config.model_dump(mode="json")}
        (folder / MODEL_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def label_columns(tasks: list[Task], proba: dict[str, np.ndarray]) -> dict[str, list]:
    """{task: predicted labels, f"{task}.proba.{label}": probabilities} in schema order."""
    columns: dict[str, list] = {}
    for task in tasks:
        p = proba[task.name]
        columns[task.name] = [task.label_names[i] for i in p.argmax(axis=1)]
        for index, label in enumerate(task.label_names):
            columns[f"{task.name}.proba.{label}"] = p[:, index].astype(float).tolist()
    return columns


def load_predictor(reference: str | Path) -> Predictor:
    """A Predictor from a model folder, or from an MLflow model URI (`runs:/ID/model`, `models:/NAME/VERSION`)."""
    folder = resolve_model_folder(str(reference))
    info = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    schema = Schema.model_validate(info["preprocessing"]["schema"])
    tasks = [schema.task(name) for name in info["tasks"]]
    from train.models import registry

    try:
        kind = registry.model_class(info["kind"])
    except TaawunError:
        raise TaawunError(f"{folder}: model kind {info['kind']!r} is not known to taawun {__version__}; "
                          f"kinds: {registry.names()}") from None
    model = kind.load(folder, registry.model_config(info["model"]), tasks)
    return Predictor(model, schema, tasks, info["preprocessing"], info)


def resolve_model_folder(reference: str) -> Path:
    """The local model folder for a path or an MLflow URI (downloaded from the tracking store)."""
    if "://" not in reference and ":/" not in reference:
        folder = Path(reference)
        for candidate in (folder, folder / "artifacts" / "model"):
            if (candidate / MODEL_FILE).is_file():
                return candidate
        raise TaawunError(f"{reference}: not a taawun model folder (no {MODEL_FILE}); give a folder written by "
                          "`taawun train` or an MLflow URI such as runs:/<run id>/model or models:/<name>/<version>")
    import mlflow

    from train.tracking.store import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(None))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=reference))
    except Exception as err:  # MLflow raises several types for a missing run, model or version
        raise TaawunError(f"{reference}: cannot download the model from {mlflow.get_tracking_uri()}: {err}") from None
    return resolve_model_folder(str(local))
