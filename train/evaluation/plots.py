"""Evaluation plots: confusion matrices and precision-recall curves, drawn headless on bare matplotlib Figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    """PNG of a confusion matrix: the count in each cell, coloured by its share of the gold row.

    Figure and fonts scale with the number of labels so that 10+ classes stay readable. Drawn on a bare Agg
    `Figure` (not pyplot), so it works headless and leaves the caller's matplotlib backend and figures alone.
    """
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    k = len(labels)
    side = max(5.0, 0.55 * k + 3.0)
    font = max(6.0, 12.0 - 0.4 * k)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold label's articles")
    annotate_cells(ax, counts, share, font)
    ax.set_xticks(range(k), labels=labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(k), labels=labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_figure(fig, path)



def annotate_cells(ax: Any, counts: np.ndarray, share: np.ndarray, font: float) -> None:
    """Write each count in its cell, white on dark cells so it stays legible."""
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if share[row, col] > 0.5 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=font)



def plot_pr_curve(curve: dict, title: str, path: Path) -> Path:
    """PNG of a precision-recall curve (recall on x), with the AP in the legend if `curve['average_precision']`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.add_subplot()
    ap = curve.get("average_precision")
    label = f"AP = {ap:.3f}" if ap is not None else "precision-recall"
    ax.step(curve["recall"], curve["precision"], where="post", label=label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return save_figure(fig, path)



def save_figure(fig: Any, path: Path) -> Path:
    """Save a figure as PNG, creating the folder; the figure is not registered with pyplot, so nothing leaks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def draw_grouped_bars(ax: Any, values: Any, errors: dict[Any, np.ndarray] | None = None) -> None:
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
