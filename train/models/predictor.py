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
# Prior adaptation estimates label proportions from the articles: from a handful, each article's own label wins.
MIN_ARTICLES_TO_ADAPT = 20


class Predictor:
    """A trained model with its schema and preprocessing: raw articles in, labels and probabilities out."""

    def __init__(self, model, schema: Schema, tasks: list[Task], preprocessing: dict[str, Any], info: dict[str, Any]):
        from train.text.clean import CleaningOptions, NormalizationOptions, TextPipeline

        self.model = model
        self.schema = schema
        self.tasks = tasks
        self.preprocessing = preprocessing
        self.info = info
        # Decision thresholds of binary tasks, tuned when training: {task: probability of the positive label}.
        self.thresholds: dict[str, float] = dict(info.get("thresholds") or {})
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

    @property
    def evidence_tasks(self) -> list[str]:
        """The tasks for which the model points at an evidence sentence."""
        return list(getattr(self.model, "evidence_tasks", []))

    def evidence(self, titles: list[str], texts: list[str], clean: bool = True) -> dict[str, list[dict]]:
        """{task: [{"sentence", "score"} per article]} for the tasks whose model scores sentences; {} for others."""
        from train.models.base import Articles

        provider = getattr(self.model, "evidence", None)
        if provider is None:
            return {}
        if clean:
            titles, texts = self.clean(titles), self.clean(texts)
        return provider(Articles(titles, texts))

    def predict_frame(self, frame, adapt_priors: bool = False):
        """MLflow pyfunc: a DataFrame with `text` (and optional `title`, target columns) -> labels and probabilities;
        with `adapt_priors`, adapted to the label proportions of the frame's articles (`adapt_priors`)."""
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
        thresholds = self.thresholds
        if adapt_priors:
            proba, _, thresholds = self.adapt_priors(proba)
        # Probabilities stay float columns (NaN where a task does not apply), whatever the rows.
        return pd.DataFrame({name: pd.Series(values, dtype=float if ".proba." in name else None)
                             for name, values in label_columns(self.tasks, proba, thresholds).items()})

    def adapt_priors(self, proba: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]],
                                                               dict[str, float]]:
        """`train.models.priors.adapt_tasks` with the model's reference priors and thresholds."""
        from train.models.priors import adapt_tasks

        references = self.reference_priors()
        articles = len(next(iter(proba.values()), []))
        if articles < MIN_ARTICLES_TO_ADAPT:
            raise TaawunError(f"--adapt-priors estimates the labels' proportions from the articles given, and {articles} "
                              f"are too few for an estimate (at least {MIN_ARTICLES_TO_ADAPT}; a few hundred are "
                              "better): give the whole batch of the new outlet, or predict without it")
        return adapt_tasks(self.tasks, proba, references, self.thresholds)

    def reference_priors(self) -> dict[str, dict]:
        """The label priors (and temperatures) that prior adaptation starts from, saved at training."""
        references = self.info.get("label_priors")
        if not references:
            raise TaawunError("this model's folder has no reference label priors (model.json: label_priors): it was "
                              "trained by a taawun older than prior adaptation. Retrain it, or predict without "
                              "--adapt-priors")
        return references

    def save(self, folder: Path) -> None:
        """Write the model folder."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder)
        info = {**self.info, "kind": self.model.kind, "taawun_version": __version__,
                "tasks": [task.name for task in self.tasks], "preprocessing": self.preprocessing,
                "model": self.model.config.model_dump(mode="json")}
        (folder / MODEL_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def label_columns(tasks: list[Task], proba: dict[str, np.ndarray],
                  thresholds: dict[str, float] | None = None) -> dict[str, list]:
    """{task: predicted labels, f"{task}.proba.{label}": probabilities} in schema order.

    Where a task does not apply (the task its `applies_when` names was predicted with another label), its label is ""
    and its probabilities are None: the schema says it has no label there.
    """
    from train.evaluation.metrics import predicted_labels

    labels = predicted_labels(tasks, proba, thresholds)
    columns: dict[str, list] = {}
    for task in tasks:
        columns[task.name] = labels[task.name]
        applies = [label != "" for label in labels[task.name]]
        for index, label in enumerate(task.label_names):
            values = proba[task.name][:, index].astype(float).tolist()
            columns[f"{task.name}.proba.{label}"] = [v if ok else None for v, ok in zip(values, applies, strict=True)]
    return columns


def load_predictor(reference: str | Path, tracking_uri: str | None = None) -> Predictor:
    """A Predictor from a model folder, or from an MLflow model URI (`runs:/ID/model`, `models:/NAME/VERSION`).

    Only data files are read (JSON, NumPy without pickle, skops with a list of trusted types, safetensors): no code
    stored with a model runs. An MLflow URI is resolved in `tracking_uri` (default: MLFLOW_TRACKING_URI, else
    sqlite:///mlflow.db).
    """
    folder = resolve_model_folder(str(reference), tracking_uri)
    info = _model_info(folder)
    from train.models import registry

    try:
        kind = registry.model_class(info["kind"])
    except TaawunError:
        raise TaawunError(f"{folder}: model kind {info['kind']!r} is not known to taawun {__version__}; "
                          f"kinds: {registry.names()}") from None
    try:
        schema = Schema.model_validate(info["preprocessing"]["schema"])
        tasks = [schema.task(name) for name in info["tasks"]]
        model = kind.load(folder, registry.model_config(info["model"]), tasks)
        return Predictor(model, schema, tasks, info["preprocessing"], info)
    except TaawunError:
        raise
    except Exception as err:  # a missing, truncated or corrupt file: each library raises its own error types
        raise TaawunError(f"{folder}: cannot load the {info['kind']} model ({type(err).__name__}: {err}). The model "
                          "folder is incomplete or corrupt: copy it again, or retrain") from None


def _model_info(folder: Path) -> dict[str, Any]:
    """model.json, with a clear error when it is cut short or lacks what every model folder has."""
    path = folder / MODEL_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TaawunError(f"{path}: not valid JSON ({err}); the file is truncated or corrupt: copy the model folder "
                          "again, or retrain") from None
    missing = [key for key in ("kind", "tasks", "preprocessing", "model") if key not in info]
    if missing:
        raise TaawunError(f"{path}: no {missing}; not a complete taawun model file (copy the model folder again, or "
                          "retrain)")
    return info


def resolve_model_folder(reference: str, tracking_uri: str | None = None) -> Path:
    """The local model folder for a path or an MLflow URI (downloaded from the tracking store `tracking_uri`)."""
    if "://" not in reference and ":/" not in reference:
        folder = Path(reference)
        for candidate in (folder, folder / "artifacts" / "model"):
            if (candidate / MODEL_FILE).is_file():
                return candidate
        raise TaawunError(f"{reference}: not a taawun model folder (no {MODEL_FILE}); give a folder written by "
                          "`taawun train` or an MLflow URI such as runs:/<run id>/model or models:/<name>/<version>")
    import mlflow

    from train.tracking.store import check_store
    from train.tracking.store import tracking_uri as default_uri

    uri = default_uri(tracking_uri)
    check_store(uri)  # an unreachable server fails in seconds, not after minutes of MLflow's retries
    mlflow.set_tracking_uri(uri)  # models:/ URIs resolve in the registry, which follows the tracking URI
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=reference, tracking_uri=uri))
    except Exception as err:  # MLflow raises several types for a missing run, model or version
        raise TaawunError(f"{reference}: cannot download the model from {uri}: {err}") from None
    return resolve_model_folder(str(local))
