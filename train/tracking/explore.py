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
EPOCH_F1 = re.compile(r"^epoch/validation/(?P<task>.+)/macro_f1$")  # logged by the transformer kind after each epoch
LOSS = "train/loss"
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


def newest_per_name(runs: pd.DataFrame) -> pd.DataFrame:
    """What to compare: on each dataset, the newest finished run with test scores of each experiment and run name.

    Scores on different datasets (content fingerprints) do not compare, so every dataset keeps its own runs (the
    newest dataset first, then run names sorted); a run name trained again counts once, by its newest run. Adds
    `dataset_label`, the dataset's folder and the start of its fingerprint, to group and title by.
    """
    scored = set(task_scores(runs)["run_id"])
    finished = runs[(runs["status"] == "FINISHED") & runs["run_id"].isin(scored)]
    newest = finished.sort_values("start_time", ascending=False, kind="stable")
    newest = newest.groupby(["dataset_fingerprint", "experiment", "run_name"], sort=False).head(1)
    rank = {fingerprint: i for i, fingerprint in enumerate(dict.fromkeys(newest["dataset_fingerprint"]))}
    labels = [f"{Path(folder).name or '?'} ({fingerprint[:8]})"
              for folder, fingerprint in zip(newest["dataset"], newest["dataset_fingerprint"], strict=True)]
    newest = newest.assign(dataset_label=labels, dataset_rank=newest["dataset_fingerprint"].map(rank))
    newest = newest.sort_values(["dataset_rank", "experiment", "run_name"], kind="stable")
    return newest.drop(columns="dataset_rank").reset_index(drop=True)


def plot_macro_f1(runs: pd.DataFrame, title: str = "Runs per task") -> Figure:
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
    ax.set_title(title)
    return fig


def evaluation_metrics(tracking_uri: str, run_id: str) -> dict[str, Any] | None:
    """A run's evaluation/metrics.json (split -> task -> metrics, labels in schema order); None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifact(tracking_uri, run_id, "evaluation/metrics.json", tmp)
        return None if path is None else json.loads(path.read_text(encoding="utf-8"))


def per_class_scores(tracking_uri: str, runs: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """F1 and support of every label of every task, per run, from the runs' metrics.json (labels in schema order)."""
    rows = [{"run_id": run_id, "label": label, "task": task, "class": name, "f1": m["f1"], "support": m["support"]}
            for run_id, label, task, metrics in _task_metrics(tracking_uri, runs, split)
            for name, m in metrics.get("per_class", {}).items()]
    return pd.DataFrame(rows, columns=["run_id", "label", "task", "class", "f1", "support"])


def per_outlet_scores(tracking_uri: str, runs: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Macro-F1 and articles per outlet (`evaluation.group_field`) of every task, per run; empty without groups."""
    rows = [{"run_id": run_id, "label": label, "task": task, "outlet": name, "macro_f1": m["macro_f1"], "n": m["n"]}
            for run_id, label, task, metrics in _task_metrics(tracking_uri, runs, split)
            for name, m in (metrics.get("per_group") or {}).items()]
    return pd.DataFrame(rows, columns=["run_id", "label", "task", "outlet", "macro_f1", "n"])


def _task_metrics(tracking_uri: str, runs: pd.DataFrame, split: str):
    """(run id, run label, task, metrics) of every task a run evaluated on `split`."""
    for _, run in runs.iterrows():
        results = (evaluation_metrics(tracking_uri, run["run_id"]) or {}).get(split, {})
        for task, metrics in results.items():
            yield run["run_id"], run_label(run), task, metrics


def plot_per_class(scores: pd.DataFrame, split: str = "test") -> Figure:
    """F1 of each label on `split`, one panel per task, the runs side by side (`per_class_scores`'s frame)."""
    return _panels(scores, "class", "f1", f"F1 on {split}", "F1 per label")


def plot_per_outlet(scores: pd.DataFrame, split: str = "test") -> Figure:
    """Macro-F1 of each outlet on `split`, one panel per task, the runs side by side (`per_outlet_scores`'s frame).

    Outlets with few articles give jumpy scores: the x labels carry each outlet's article count.
    """
    counts = scores.groupby(["task", "outlet"], sort=False)["n"].max()
    named = scores.assign(outlet=[f"{outlet} ({counts[(task, outlet)]})"
                                  for task, outlet in zip(scores["task"], scores["outlet"], strict=True)])
    return _panels(named, "outlet", "macro_f1", f"macro-F1 on {split}", "Macro-F1 per outlet (articles)")


def _panels(scores: pd.DataFrame, group: str, value: str, ylabel: str, title: str) -> Figure:
    """One panel of grouped bars per task: `group` values on x, one bar per run."""
    from matplotlib.figure import Figure

    if scores.empty:
        raise TaawunError(f"nothing to plot for {title.lower()}: the runs have no such scores")
    tasks = list(dict.fromkeys(scores["task"]))
    widest = max(scores[scores["task"] == task][group].nunique() for task in tasks)
    fig = Figure(figsize=(max(7.0, 0.9 * widest + 4.0), 3.6 * len(tasks)), layout="constrained")
    fig.suptitle(title)
    for ax, task in zip(fig.subplots(len(tasks), 1, squeeze=False)[:, 0], tasks, strict=True):
        values = scores[scores["task"] == task].pivot_table(index=group, columns="label", values=value, sort=False)
        draw_grouped_bars(ax, values)
        ax.set_ylim(0.0, 1.05)
        ax.set_ylabel(ylabel)
        ax.set_title(task)
    return fig


def learning_history(tracking_uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch curves of the runs that logged them (the transformer kind): validation macro-F1 per task after
    each epoch, and the training loss per step. Columns: run_id, label, curve, task, epoch, step, value."""
    columns = ["run_id", "label", "curve", "task", "epoch", "step", "value"]
    if runs.empty:  # and no client: it would create a SQLite store that is not there
        return pd.DataFrame(columns=columns)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    rows = []
    for _, run in runs.iterrows():
        names = client.get_run(run["run_id"]).data.metrics
        for name in sorted(names):
            match = EPOCH_F1.match(name)
            if not match and name != LOSS:
                continue
            history = sorted(client.get_metric_history(run["run_id"], name), key=lambda m: (m.step, m.timestamp))
            curve, task = ("validation macro-F1", match["task"]) if match else ("training loss", "")
            rows += [{"run_id": run["run_id"], "label": run_label(run), "curve": curve, "task": task,
                      "epoch": epoch, "step": m.step, "value": m.value} for epoch, m in enumerate(history, 1)]
    return pd.DataFrame(rows, columns=columns)


def curves_message(runs: pd.DataFrame, history: pd.DataFrame) -> str:
    """Which runs have learning curves, and which have none (only the transformer kind logs them, once per epoch)."""
    with_curves = set(history["run_id"])
    without = [run_label(run) for _, run in runs.iterrows() if run["run_id"] not in with_curves]
    shown = [run_label(run) for _, run in runs.iterrows() if run["run_id"] in with_curves]
    lines = [f"Learning curves of {len(shown)} run(s): {', '.join(shown)}." if shown else "No run has learning curves."]
    if without:
        lines.append(f"No per-epoch curves for {', '.join(without)}: only the transformer kind logs them (validation "
                     "macro-F1 after each epoch, training loss per step); the others fit in one go.")
    return "\n".join(lines)


def plot_learning_curves(history: pd.DataFrame) -> Figure:
    """Validation macro-F1 per epoch, one panel per task (one line per run), and the training loss per step."""
    from matplotlib.figure import Figure

    if history.empty:
        raise TaawunError("no learning curves to plot; only the transformer kind logs them (`learning_history`)")
    scores = history[history["curve"] == "validation macro-F1"]
    tasks = list(dict.fromkeys(scores["task"]))
    loss = history[history["curve"] == "training loss"]
    panels = len(tasks) + (not loss.empty)
    fig = Figure(figsize=(5.0 * min(panels, 3), 3.6 * -(-panels // 3)), layout="constrained")
    axes = fig.subplots(-(-panels // 3), min(panels, 3), squeeze=False).ravel()
    for ax, task in zip(axes, tasks, strict=False):
        for label, curve in scores[scores["task"] == task].groupby("label", sort=False):
            ax.plot(curve["epoch"], curve["value"], marker="o", label=label)
        ax.set(title=f"{task}: validation macro-F1", xlabel="epoch", ylim=(0.0, 1.05))
    if not loss.empty:
        ax = axes[len(tasks)]
        for label, curve in loss.groupby("label", sort=False):
            ax.plot(curve["step"], curve["value"], label=label)
        ax.set(title="training loss", xlabel="training step")
    for ax in axes[:panels]:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    for ax in axes[panels:]:
        ax.set_axis_off()
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
