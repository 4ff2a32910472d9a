"""What the benchmarks share: the real data, datasets built from it, fitting and scoring a model kind, Markdown tables.

Models go through the kind contract (`train.models.base`): built from the registry by their config's `kind`, fit on
`Labelled` articles with a `FitContext`, scored on their `predict_proba`. The scripts import this module as
`from bench import common` once the project root is on `sys.path` (tests load `bench/report.py` by its path, where
`bench/` itself is not on the path).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GOLD_ARTICLES = SHARED / "gold" / "articles.jsonl.gz"
DATA_CONFIGS = ROOT / "configs" / "data"
EXPERIMENTS = ROOT / "configs" / "experiments"
SEED = 13
SPLITS = ("train", "validation", "test")


def require(path: Path = SHARED) -> None:
    """Stop with a message when the shared real data is absent; else work from the project root.

    The shipped configs name their files relative to the project root, so the scripts run from there wherever they
    were started.
    """
    if not path.exists():
        sys.exit(f"skipped: {path} is absent (this benchmark needs the project's shared real data)")
    os.chdir(ROOT)


# -- data -------------------------------------------------------------------------------------------------------------
def gold_texts() -> list[str]:
    """The raw texts of the gold articles, in file order (for the encoder's speed: sentences, not a dataset)."""
    import gzip
    import json

    with gzip.open(GOLD_ARTICLES, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def build(config_path: str | Path, output: Path, **changes: Any):
    """Build a data config into `output`, with `changes` to its other settings (e.g. `split`).

    Returns the build's result (its report) and the schema.
    """
    from train.data.build import build_dataset
    from train.data.config import load_data_config

    config, schema = load_data_config(config_path)
    result = build_dataset(config.model_copy(update={"output": Path(output), **changes}), schema)
    return result, schema


def dataset(name: str, folder: Path, **changes: Any):
    """configs/data/NAME.yaml built into folder/NAME (see `current`): the DatasetDict and the schema."""
    return current(DATA_CONFIGS / f"{name}.yaml", folder / name, **changes)


def current(config_path: str | Path, output: Path, **changes: Any):
    """A data config with `changes` to its other settings, built into `output` unless a current build is there (as
    `taawun train` does: the same config and inputs are not built twice): the DatasetDict and the schema."""
    from train.data.build import build_if_stale, open_dataset
    from train.data.config import load_data_config

    config, schema = load_data_config(config_path)
    build_if_stale(config.model_copy(update={"output": Path(output), **changes}), schema, Path(config_path))
    built, _, _ = open_dataset(output)
    return built, schema


def labelled(split, tasks: Sequence) -> Any:
    """A built dataset's split as model kinds read it: articles (with the tasks' target fields) and labels."""
    from train.models.base import Articles, Labelled, split_labels

    targets = list(dict.fromkeys(task.target_field for task in tasks if task.target_field))
    return Labelled(Articles.from_split(split, targets), split_labels(split, tasks))


def whole(built, tasks: Sequence) -> Any:
    """Every article of a built dataset, its splits one after the other (train, validation, test)."""
    import datasets

    return labelled(datasets.concatenate_datasets([built[name] for name in SPLITS]), tasks)


def subset(data, rows: Iterable[int]) -> Any:
    """The labelled articles at `rows`, in that order."""
    from train.models.base import Labelled

    rows = np.asarray(list(rows), dtype=np.int64)
    return Labelled(data.articles.select(rows), {task: values[rows] for task, values in data.labels.items()})


def gold_folds(folder: Path, folds: int = 5) -> tuple[Any, list[tuple[Any, Any]]]:
    """gold built and cut into `folds` (train, test) pairs, and its schema.

    Folds hold whole duplicate clusters (a copy never tests what its twin trained on) and are stratified on
    bilateral_security_cooperation: with 32 `yes` in 240 articles, an unstratified fold may have none.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    built, schema = dataset("gold", folder)
    data = whole(built, schema.tasks)
    y = data.labels["bilateral_security_cooperation"]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=SEED)
    pairs = splitter.split(np.zeros(len(y)), y, data.articles.group_array())
    return schema, [(subset(data, train), subset(data, test)) for train, test in pairs]


# -- models -----------------------------------------------------------------------------------------------------------
def experiment_model(name: str, **changes: Any):
    """The model config of configs/experiments/NAME.yaml (with its bases), with `changes` to its settings."""
    from train.config.experiment import load_experiment

    return load_experiment(EXPERIMENTS / f"{name}.yaml", {"model": changes} if changes else None).model


def fit(config, tasks: list, train, context=None) -> tuple[Any, float]:
    """A model of the kind `config.kind` names, fit on `train` (Labelled); and the seconds `fit` took."""
    from train.models import registry
    from train.models.base import FitContext

    model = registry.model_class(config.kind)(config, tasks)
    started = time.perf_counter()
    model.fit(train.articles, train.labels, context or FitContext(seed=SEED))
    return model, time.perf_counter() - started


def score(model, test, positive: bool = False) -> dict[str, Any]:
    """Timed prediction on `test` (Labelled) and the macro-F1 of each task on the articles labelled for it.

    Returns {"f1": {task: macro-F1}, "predict_s", "per_s" (articles/s)}; with `positive`, "f1" also holds the F1 of
    each binary task's positive label, as "task:label".
    """
    started = time.perf_counter()
    proba = model.predict_proba(test.articles)
    seconds = time.perf_counter() - started
    return {"f1": task_scores(model.tasks, test.labels, proba, positive), "predict_s": seconds,
            "per_s": len(test) / seconds}


def task_scores(tasks: Sequence, labels: dict[str, np.ndarray], proba: dict[str, np.ndarray],
                positive: bool = False) -> dict[str, float]:
    """Macro-F1 per task on the rows with a label (and the positive label's F1 of binary tasks, with `positive`)."""
    from sklearn.metrics import f1_score

    from train.evaluation.metrics import labelled_macro_f1

    scores = {}
    for task in tasks:
        scores[task.name] = labelled_macro_f1(labels[task.name], proba[task.name])
        if positive and task.positive_label:
            keep = labels[task.name] >= 0
            index = task.label_names.index(task.positive_label)
            predicted = proba[task.name][keep].argmax(axis=1)
            scores[f"{task.name}:{task.positive_label}"] = float(
                f1_score(labels[task.name][keep] == index, predicted == index, zero_division=0))
    return scores


def fit_and_score(config, tasks: list, train, test, context=None, positive: bool = False) -> dict[str, Any]:
    """`fit` then `score`: the model, "fit_s", and what `score` returns."""
    model, fit_seconds = fit(config, tasks, train, context)
    return {"model": model, "fit_s": fit_seconds, **score(model, test, positive)}


# -- tables -----------------------------------------------------------------------------------------------------------
def mean_sd(values: Sequence[float], ddof: int = 0) -> str:
    """"mean ± standard deviation" to 3 decimals; the mean alone when there are too few values for a spread."""
    if len(values) <= ddof:
        return f"{np.mean(values):.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=ddof):.3f}"


def row(cells: Iterable[Any]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(header: Sequence[str], rows: Iterable[Iterable[Any]] = ()) -> list[str]:
    """A Markdown table as lines: the header, its rule, then the rows."""
    return [row(header), "|---" * len(header) + "|", *(row(cells) for cells in rows)]
