"""Exploring a built dataset and comparing runs: pandas tables and matplotlib figures for the notebooks.

Everything here only reads (the dataset folder, the MLflow store) and returns values; nothing is displayed or written.
Figures are bare `matplotlib.figure.Figure` objects, not registered with pyplot, so the caller's backend and figures
are left alone (a notebook shows them after `%matplotlib inline`).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from train.errors import TaawunError
from train.data.report import load_report  # noqa: F401  (re-exported: a notebook needs only this module)
from train.tracking.store import (
    check_store,  # importing it also turns off MLflow's download progress bars
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

NONE_LABEL = "(none)"  # a task that does not apply to an article (label -1), as report.json writes it
EXCERPT_CHARS = 300
ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
RTL_STYLE = {"direction": "rtl", "text-align": "right"}
RUN_COLUMNS = ["run_id", "run_name", "experiment", "model_kind", "tasks", "dataset", "dataset_fingerprint", "status",
               "start_time"]
F1_METRIC = re.compile(r"^test/(?P<task>.+)/macro_f1$")
MISCLASSIFIED_COLUMNS = ["task", "id", "true", "predicted", "confidence", "probabilities", "text"]
ERROR_COLUMNS = ["task", "id", "true", "predicted", "confidence", "true_probability", "text"]


# --- the dataset -----------------------------------------------------------------------------------------------------

def load_dataset_frame(folder: str | Path) -> pd.DataFrame:
    """Every split of a built dataset in one frame, with a `split` column and label names instead of integers.

    Label columns are categoricals in the schema's label order; a task that does not apply (-1) reads "(none)".
    """
    import datasets

    folder = Path(folder)
    if not (folder / "dataset_dict.json").is_file():
        raise TaawunError(f"{folder}: no built dataset here; build one with `make demo` or "
                          "`taawun data build configs/data/sample.yaml` (set TAAWUN_DATASET to its folder)")
    dataset = datasets.load_from_disk(str(folder))
    frame = pd.concat([split.to_pandas().assign(split=name) for name, split in dataset.items()], ignore_index=True)
    frame["split"] = pd.Categorical(frame["split"], categories=list(dataset))
    features = next(iter(dataset.values())).features
    for column, feature in features.items():
        if isinstance(feature, datasets.ClassLabel):
            frame[column] = name_labels(frame[column], list(feature.names))
    return frame


def name_labels(codes: pd.Series, names: list[str]) -> pd.Series:
    """Label indices as a categorical of label names (schema order); -1 becomes "(none)" when it occurs."""
    codes = codes.astype(int)
    if (codes < 0).any():
        names = [*names, NONE_LABEL]
        codes = codes.where(codes >= 0, len(names) - 1)
    return pd.Series(pd.Categorical.from_codes(codes.to_numpy(), categories=names), index=codes.index)


def label_distribution(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Articles per split (rows) and label (columns, schema order, zeros included) for one task."""
    table = frame.groupby(["split", task], observed=False).size().unstack(task, fill_value=0)
    table.columns = table.columns.astype(str)
    table.columns.name = task
    return table


def plot_label_distribution(frame: pd.DataFrame, task: str) -> Figure:
    """Bars of each label's share of every split's articles, so that splits of different sizes compare."""
    from matplotlib.figure import Figure

    counts = label_distribution(frame, task)
    shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
    fig = Figure(figsize=(max(6.0, 0.9 * len(shares.columns) + 2.0), 3.8), layout="constrained")
    ax = fig.add_subplot()
    draw_grouped_bars(ax, shares.T)
    ax.set_ylabel("share of the split's articles")
    ax.set_title(f"{task}: labels per split")
    return fig


def text_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Articles and the length of the cleaned text (characters, whitespace-separated words) per split."""
    lengths = with_lengths(frame)
    table = lengths.groupby("split", observed=True)[["chars", "words"]].agg(["min", "median", "mean", "max"])
    table.insert(0, ("articles", ""), lengths.groupby("split", observed=True).size())
    return table.round(1)


def with_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `chars` and `words` columns for the cleaned text (words as the build report counts them)."""
    return frame.assign(chars=frame["text"].str.len(), words=frame["text"].str.split().str.len())


def plot_text_lengths(frame: pd.DataFrame) -> Figure:
    """Histogram of words per article, one outline per split (normalized, so that splits compare)."""
    from matplotlib.figure import Figure

    lengths = with_lengths(frame)
    bins = np.histogram_bin_edges(lengths["words"], bins=30)
    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for split, words in lengths.groupby("split", observed=True)["words"]:
        ax.hist(words, bins=bins, density=True, histtype="step", linewidth=1.5, label=f"{split} ({len(words)})")
    ax.set_xlabel("words per article (cleaned text)")
    ax.set_ylabel("density")
    ax.legend()
    return fig


def agreement_table(report: dict[str, Any]) -> pd.DataFrame:
    """Agreement per task and annotator pair: items, raw agreement, Cohen's kappa, and the task's Krippendorff alpha."""
    rows = [{"task": task, "annotators": " vs ".join(pair["annotators"]), "items": pair["items"],
             "agreement": pair["agreement"], "cohen_kappa": pair["kappa"],
             "krippendorff_alpha": entry.get("krippendorff_alpha")}
            for task, entry in report.get("annotations", {}).get("agreement", {}).items()
            for pair in entry.get("pairs", [])]
    columns = ["task", "annotators", "items", "agreement", "cohen_kappa", "krippendorff_alpha"]
    return pd.DataFrame(rows, columns=columns)


def disagreements(folder: str | Path) -> pd.DataFrame:
    """disagreements.csv of a built dataset: id, task, each annotator's label, the resolution and the final label.

    Empty (no rows) when the dataset has no such file: a single annotator, or inline labels only.
    """
    path = Path(folder) / "disagreements.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["id", "task", "resolution", "final"])
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def disagreement_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Disagreements per task (rows) and how each was resolved (columns), with totals."""
    if table.empty:
        return pd.DataFrame(columns=["total"])
    return pd.crosstab(table["task"], table["resolution"], margins=True, margins_name="total")


def duplicate_clusters(report: dict[str, Any], frame: pd.DataFrame, first: int | None = None) -> pd.DataFrame:
    """Members of the report's near-duplicate clusters (all, or the `first` ones), with split, title and labels.

    `duplicate_cluster` numbers the report's clusters from 1; a member left out of the dataset has no split.
    """
    clusters = report.get("duplicates", {}).get("clusters", [])[:first]
    members = pd.DataFrame([{"duplicate_cluster": number, "id": article}
                            for number, ids in enumerate(clusters, 1) for article in ids],
                           columns=["duplicate_cluster", "id"])
    columns = ["id", "split", "title", *report.get("tasks", [])]
    return members.merge(frame[columns], on="id", how="left")


def exact_duplicates(report: dict[str, Any]) -> pd.DataFrame:
    """Exact-duplicate groups: the id kept and the ids removed."""
    groups = report.get("duplicates", {}).get("groups", [])
    return pd.DataFrame([{"kept": g["kept"], "removed": ", ".join(g["removed"])} for g in groups],
                        columns=["kept", "removed"])


def duplicate_conflicts(report: dict[str, Any]) -> pd.DataFrame:
    """Duplicates that carried different labels: exact ones (with the action taken) and near ones (reported only)."""
    duplicates = report.get("duplicates", {})
    rows = [{"kind": kind, "ids": ", ".join(c["ids"]), "labels": json.dumps(c["labels"], ensure_ascii=False),
             "action": c.get("action", "kept as labelled")}
            for kind, key in (("exact", "conflicts"), ("near", "near_conflicts")) for c in duplicates.get(key, [])]
    return pd.DataFrame(rows, columns=["kind", "ids", "labels", "action"])


def cleaning_summary(report: dict[str, Any]) -> pd.DataFrame:
    """What cleaning removed, by kind (`chars`: characters in all), and how many articles it changed."""
    cleaning = report.get("cleaning", {})
    rows = [*cleaning.get("removed", {}).items(), ("articles changed", cleaning.get("articles_changed", 0))]
    return pd.DataFrame(rows, columns=["removed", "count"]).set_index("removed")


def cleaning_examples(frame: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The `n` articles whose raw text lost the most characters to cleaning and normalization, raw beside clean."""
    lost = frame["raw_text"].str.len() - frame["text"].str.len()
    picked = frame.assign(chars_removed=lost).nlargest(n, "chars_removed")
    return excerpts(picked[["id", "split", "chars_removed", "raw_text", "text"]], ["raw_text", "text"])


def rejects_summary(report: dict[str, Any]) -> pd.DataFrame:
    """Records set aside into rejects.jsonl, by reason."""
    by_reason = report.get("rejects", {}).get("by_reason", {}) or {}
    return pd.DataFrame(list(by_reason.items()), columns=["reason", "records"])


def examples_per_label(frame: pd.DataFrame, task: str, n: int = 2, seed: int = 0) -> pd.DataFrame:
    """Up to `n` articles of every label of a task (drawn with `seed`), in schema label order, text cut short."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    picked = shuffled.groupby(task, observed=True).head(n).sort_values(task, kind="stable")
    return excerpts(picked[[task, "id", "split", "title", "text"]], ["text"]).reset_index(drop=True)


def excerpts(frame: pd.DataFrame, columns: list[str], chars: int = EXCERPT_CHARS) -> pd.DataFrame:
    """The frame with the text `columns` cut to their first `chars` characters (an ellipsis marks a cut)."""
    cut = {c: frame[c].where(frame[c].str.len() <= chars, frame[c].str[:chars] + "…") for c in columns}
    return frame.assign(**cut)


def rtl(frame: pd.DataFrame) -> Styler:
    """A Styler of `frame` that renders its Arabic text columns right to left; cell text is HTML-escaped."""
    columns = [column for column in frame.columns if holds_arabic(frame[column])]
    return frame.style.format(escape="html", precision=3).set_properties(subset=columns, **RTL_STYLE)


def holds_arabic(column: pd.Series) -> bool:
    """Whether a text column holds Arabic letters (categorical and numeric columns never count)."""
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(column.dtype):
        return False
    return bool(column.dropna().astype(str).str.contains(ARABIC).any())


# --- runs in MLflow --------------------------------------------------------------------------------------------------

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
    rows = [run_row(run, experiments[run.info.experiment_id]) for run in search_all_runs(client, list(experiments))
            if "taawun.evaluation_of" not in run.data.tags]
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*RUN_COLUMNS, *(key for row in rows for key in row)])))


def search_all_runs(client: Any, experiment_ids: list[str]) -> list[Any]:
    """Every run tagged with a taawun model kind in these experiments, newest first, across result pages."""
    runs, token = [], None
    while experiment_ids:
        page = client.search_runs(experiment_ids, filter_string="tags.`taawun.model_kind` != ''",
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


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


def draw_grouped_bars(ax: Axes, values: pd.DataFrame, errors: dict[Any, np.ndarray] | None = None) -> None:
    """One group of bars per row of `values`, one bar per column (a missing value: no bar), optional error bars."""
    x = np.arange(len(values.index))
    width = 0.8 / max(1, len(values.columns))
    for i, column in enumerate(values.columns):
        offset = (i - (len(values.columns) - 1) / 2) * width
        ax.bar(x + offset, values[column].to_numpy(dtype=float), width, label=str(column),
               yerr=None if errors is None else errors[column], capsize=3)
    ax.set_xticks(x, labels=[str(v) for v in values.index], rotation=30, ha="right", rotation_mode="anchor")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


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
    from train.evaluation.metrics import annotate_cells

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
