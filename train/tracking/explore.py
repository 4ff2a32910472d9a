"""Comparing runs in MLflow: pandas tables and matplotlib figures for the experiments notebook.

Everything here only reads the MLflow store and returns values; nothing is displayed or written. Figures are bare
`matplotlib.figure.Figure` objects, not registered with pyplot (a notebook shows them after `%matplotlib inline`).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from train.data.explore import excerpts, rtl  # noqa: F401  (re-exported: a notebook needs only this module)
from train.errors import TaawunError
from train.evaluation.plots import draw_grouped_bars
from train.tracking.runs import search_runs
from train.tracking.store import (
    check_store,  # importing it also turns off MLflow's download progress bars
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RUN_COLUMNS = ["run_id", "run_name", "experiment", "model_kind", "tasks", "dataset", "dataset_fingerprint", "status",
               "start_time"]
F1_METRIC = re.compile(r"^test/(?P<task>.+)/macro_f1$")
MISCLASSIFIED_COLUMNS = ["task", "id", "true", "predicted", "confidence", "probabilities", "text"]
ERROR_COLUMNS = ["task", "id", "true", "predicted", "confidence", "true_probability", "text"]


def load_runs(tracking_uri: str, experiment: str | None = None) -> pd.DataFrame:
    """Training runs of a store, newest first, one row each, with every task's test macro-F1 and bootstrap interval.

    Columns: run_id, run_name, experiment, model_kind, tasks, dataset (its folder), dataset_fingerprint, status,
    start_time, then `test/<task>/macro_f1`, `..._ci_low`, `..._ci_high` per task. Evaluation runs
    (`taawun.evaluation_of`) and grid-search trials are left out. A SQLite store whose file does not exist is
    empty (and is not created).
    """
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return pd.DataFrame(columns=RUN_COLUMNS)
    import mlflow

    check_store(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()
                   if experiment is None or e.name == experiment}
    if experiment is not None and not experiments:
        raise TaawunError(f"no experiment {experiment!r} in {tracking_uri}")
    rows = [run_row(run, experiments[run.info.experiment_id]) for run in search_runs(client, list(experiments))
            if "taawun.evaluation_of" not in run.data.tags]
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*RUN_COLUMNS, *(key for row in rows for key in row)])))


def run_row(run: Any, experiment: str) -> dict[str, Any]:
    """One training run as a row: its facts, and its test macro-F1 metrics with their intervals."""
    tasks = [task for task in run.data.tags.get("taawun.tasks", "").split(",") if task]
    metrics = {f"test/{task}/macro_f1{end}": run.data.metrics.get(f"test/{task}/macro_f1{end}", np.nan)
               for task in tasks for end in ("", "_ci_low", "_ci_high")}
    tags = run.data.tags
    return {"run_id": run.info.run_id, "run_name": run.info.run_name or "", "experiment": experiment,
            "model_kind": tags.get("taawun.model_kind", ""), "tasks": ",".join(tasks),
            "dataset": tags.get("taawun.dataset", ""),
            "dataset_fingerprint": tags.get("taawun.dataset_fingerprint", ""),
            "status": run.info.status, "start_time": pd.to_datetime(run.info.start_time, unit="ms"), **metrics}


def runs_message(runs: pd.DataFrame, tracking_uri: str) -> str:
    """One line on what the store holds, or how to fill it when it holds no training run."""
    if runs.empty:
        return (f"No training runs in {tracking_uri}. Produce some with `make demo` in the project root (or "
                "`taawun train configs/experiments/tfidf.yaml`), or point MLFLOW_TRACKING_URI at another store, "
                "then run this notebook again.")
    kinds = ", ".join(f"{kind} ({count})" for kind, count in runs["model_kind"].value_counts().items())
    return f"{len(runs)} training run(s) in {tracking_uri}: {kinds}."


def task_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """The test macro-F1 of `load_runs`'s frame in long form: one row per run and task (tasks without it dropped)."""
    rows = [{"run_id": run["run_id"], "label": run_label(run), "model_kind": run["model_kind"],
             "task": match["task"], "macro_f1": run[column],
             "ci_low": run.get(f"{column}_ci_low", np.nan), "ci_high": run.get(f"{column}_ci_high", np.nan)}
            for _, run in runs.iterrows() for column in runs.columns if (match := F1_METRIC.match(column))]
    columns = ["run_id", "label", "model_kind", "task", "macro_f1", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns).dropna(subset=["macro_f1"]).reset_index(drop=True)


def run_label(run: pd.Series) -> str:
    """A short name for a run in legends and titles: model kind, run name and the start of its id."""
    return f"{run['model_kind']}: {run['run_name'] or '-'} ({run['run_id'][:7]})"


def latest_per_kind(runs: pd.DataFrame, fingerprint: str | None = None) -> pd.DataFrame:
    """The newest finished run of each model kind with test metrics, all on one dataset (model kinds sorted).

    The dataset is the one with content `fingerprint`, by default that of the newest such run: scores on different
    test sets do not compare.
    """
    scored = set(task_scores(runs)["run_id"])
    finished = runs[(runs["status"] == "FINISHED") & runs["run_id"].isin(scored)]
    finished = finished.sort_values("start_time", ascending=False)
    if finished.empty:
        return finished.reset_index(drop=True)
    fingerprint = finished["dataset_fingerprint"].iloc[0] if fingerprint is None else fingerprint
    same_data = finished[finished["dataset_fingerprint"] == fingerprint]
    return same_data.groupby("model_kind").head(1).sort_values("model_kind").reset_index(drop=True)


def plot_macro_f1(runs: pd.DataFrame) -> Figure:
    """Test macro-F1 per task, the runs side by side in each task, their bootstrap intervals as error bars."""
    from matplotlib.figure import Figure

    scores = task_scores(runs)
    if scores.empty:
        raise TaawunError("no run with a test macro-F1 to plot; `load_runs` lists the runs and their metrics")
    values = scores.pivot_table(index="task", columns="label", values="macro_f1", sort=False)
    low = scores.pivot_table(index="task", columns="label", values="ci_low", sort=False).reindex_like(values)
    high = scores.pivot_table(index="task", columns="label", values="ci_high", sort=False).reindex_like(values)
    errors = {label: np.clip(np.vstack([values[label] - low[label], high[label] - values[label]]), 0, None)
              for label in values.columns}
    fig = Figure(figsize=(max(6.0, 1.6 * len(values.index) + 3.0), 4.2), layout="constrained")
    ax = fig.add_subplot()
    draw_grouped_bars(ax, values, errors)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("macro-F1 on test (95% bootstrap interval)")
    ax.set_title("Model kinds per task")
    return fig


def confusion_matrices(tracking_uri: str, run_ids: list[str], task: str, split: str = "test") -> Figure:
    """The confusion matrices of several runs for one task, side by side, from their CSV artifacts.

    Cells are coloured by their share of the gold label's articles and show the counts. A run without that
    matrix (another schema, a failed run) gets a panel saying so.
    """
    import mlflow
    from matplotlib.figure import Figure

    client = mlflow.MlflowClient(tracking_uri)
    tables = [confusion_table(tracking_uri, run_id, task, split) for run_id in run_ids]
    side = max(4.0, 0.5 * max((len(t) for t in tables if t is not None), default=2) + 2.5)
    fig = Figure(figsize=(side * max(1, len(run_ids)), side), layout="constrained")
    fig.suptitle(f"{task} ({split})")
    axes = fig.subplots(1, max(1, len(run_ids)), squeeze=False)[0]
    for ax, run_id, table in zip(axes, run_ids, tables):
        run = client.get_run(run_id)
        draw_confusion(ax, table, f"{run.data.tags.get('taawun.model_kind', '')}: {run.info.run_name or run_id[:7]}")
    return fig


def confusion_table(tracking_uri: str, run_id: str, task: str, split: str = "test") -> pd.DataFrame | None:
    """A run's confusion matrix (true labels as rows, predicted as columns) from its CSV artifact; None if absent."""
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifact(tracking_uri, run_id, f"evaluation/confusion/{split}_{task}.csv", tmp)
        return None if path is None else pd.read_csv(path, index_col=0, encoding="utf-8")


def download_artifact(tracking_uri: str, run_id: str, artifact: str, folder: str) -> Path | None:
    """One artifact of a run, downloaded into `folder`; None when the run has no such artifact."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact,
                                                        tracking_uri=tracking_uri, dst_path=folder))
    except (MlflowException, OSError):  # the store says "not found" in its own way: local files, a server
        return None


def draw_confusion(ax: Axes, table: pd.DataFrame | None, title: str) -> None:
    """One confusion matrix on `ax`: cells coloured by share of the gold row, with the counts written in."""
    from train.evaluation.plots import annotate_cells

    ax.set_title(title)
    if table is None:
        ax.text(0.5, 0.5, "no confusion matrix logged", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    counts = table.to_numpy(dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    annotate_cells(ax, counts, share, font=9.0)
    ax.set_xticks(range(len(table.columns)), labels=list(table.columns), rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(table.index)), labels=list(table.index))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")


def worst_errors(tracking_uri: str, run_id: str, n: int = 10, task: str | None = None,
                 split: str = "test") -> pd.DataFrame:
    """A run's most confident misclassifications on a split (one task, or all), from its misclassified artifact.

    `confidence` is the probability of the predicted label, `true_probability` that of the gold label.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifact(tracking_uri, run_id, f"evaluation/misclassified/{split}.jsonl", tmp)
        if path is None:
            raise TaawunError(f"run {run_id} in {tracking_uri} has no evaluation/misclassified/{split}.jsonl; was it "
                              f"evaluated on {split!r} (evaluation.splits)?")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    errors = pd.DataFrame(rows, columns=MISCLASSIFIED_COLUMNS)
    if task is not None:
        errors = errors[errors["task"] == task]
    errors = errors.sort_values("confidence", ascending=False, kind="stable").head(n)
    gold = [probabilities.get(true, np.nan) for probabilities, true in zip(errors["probabilities"], errors["true"])]
    errors = errors.assign(true_probability=gold)
    return errors[ERROR_COLUMNS].reset_index(drop=True)
