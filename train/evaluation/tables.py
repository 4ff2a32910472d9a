"""Evaluation results as plain-text tables for the terminal."""

from __future__ import annotations

import numpy as np


def format_table(results: dict[str, dict[str, dict]], split: str = "test") -> str:
    """A plain-text table of one split: per task n, accuracy, macro-F1 [CI], weighted-F1, positive-class F1."""
    if split not in results:
        raise ValueError(f"no results for split {split!r}; available: {', '.join(results) or '(none)'}")
    tasks = results[split]
    level = next((m.get("bootstrap", {}).get("confidence") for m in tasks.values()), None) or 0.95
    header = ["task", "n", "accuracy", f"macro-F1 [{level:.0%} CI]", "weighted-F1", "positive F1"]
    rows = [table_row(task, m) for task, m in tasks.items()]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [format_line(header, widths), format_line(["-" * w for w in widths], widths)]
    lines += [format_line(row, widths) for row in rows]
    lines += [note for task, m in tasks.items() if (note := absent_label_note(task, m))]
    lines += [priors_note(task, m["estimated_priors"], "these articles") for task, m in tasks.items()
              if m.get("estimated_priors")]
    return "\n".join(lines)


def priors_note(task: str, estimated: dict[str, float], where: str) -> str:
    """The label proportions that prior adaptation estimated in the articles (`where`), as a note."""
    shares = ", ".join(f"{label} {share:.2f}" for label, share in estimated.items())
    return f"note: {task}: probabilities adapted to the label proportions estimated in {where}: {shares}"


def priors_notes(estimated: dict[str, dict[str, float]] | None, where: str) -> list[str]:
    """`priors_note` for each task prior adaptation estimated proportions for (none without adaptation)."""
    return [priors_note(task, shares, where) for task, shares in (estimated or {}).items()]



def absent_label_note(task: str, metrics: dict) -> str | None:
    """A note on labels the model predicts that no gold article has: each pulls macro-F1 down with an F1 of 0."""
    matrix = np.asarray(metrics.get("confusion_matrix") or [], dtype=np.int64)
    if not matrix.size:
        return None
    predicted = matrix.sum(axis=0)
    absent = [f"{label} ({predicted[i]}x)" for i, (label, m) in enumerate(metrics.get("per_class", {}).items())
              if m["support"] == 0 and predicted[i] > 0]
    if not absent:
        return None
    return (f"note: {task}: predicted but in no gold label here: {', '.join(absent)}. Each counts in macro-F1 with F1 "
            "0 (scikit-learn's convention: macro-F1 averages over the gold and the predicted labels)")



def table_row(task: str, metrics: dict) -> list[str]:
    """One task's cells for `format_table`; "-" where a value is undefined."""
    ci = metrics.get("macro_f1_ci")
    macro = format_number(metrics.get("macro_f1"))
    if ci:
        macro += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    positive = metrics.get("positive")
    return [task, str(metrics.get("n", 0)), format_number(metrics.get("accuracy")), macro,
            format_number(metrics.get("weighted_f1")), format_number(positive["f1"]) if positive else "-"]



def format_number(value: float | None) -> str:
    """Three decimals, or "-" for an undefined value."""
    return "-" if value is None else f"{value:.3f}"



def format_line(cells: list[str], widths: list[int]) -> str:
    """Cells padded to their column width: the first left-aligned (names), the rest right-aligned (numbers)."""
    first, *rest = cells
    return "  ".join([first.ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(rest, widths[1:]))]).rstrip()
