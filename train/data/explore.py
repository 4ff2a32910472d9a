"""Exploring a built dataset: pandas tables and matplotlib figures for the dataset notebook.

Everything here only reads (the dataset folder, the MLflow store) and returns values; nothing is displayed or written.
Figures are bare `matplotlib.figure.Figure` objects, not registered with pyplot, so the caller's backend and figures
are left alone (a notebook shows them after `%matplotlib inline`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from train.data.report import load_report  # noqa: F401  (re-exported: a notebook needs only this module)
from train.errors import TaawunError
from train.evaluation.plots import draw_grouped_bars

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

NONE_LABEL = "(none)"  # a task that does not apply to an article (label -1), as report.json writes it
EXCERPT_CHARS = 300
ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
RTL_STYLE = {"direction": "rtl", "text-align": "right"}


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


def label_crosstab(frame: pd.DataFrame, tasks: list[str], split: str | None = None) -> pd.DataFrame:
    """Articles per combination of labels: the first task's labels as rows, the other tasks' as column levels
    (topic x cooperation x stance under the default schema), schema order, zeros kept, with totals.

    Only the articles of `split` when given; "(none)" stands for a task that does not apply to the article.
    """
    if split is not None:
        frame = frame[frame["split"] == split]
    if len(tasks) == 1:
        return frame[tasks[0]].value_counts(sort=False).rename("articles").to_frame()
    return pd.crosstab(frame[tasks[0]], [frame[task] for task in tasks[1:]], margins=True, margins_name="total",
                       dropna=False)


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
