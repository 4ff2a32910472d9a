"""Metric names for MLflow: flat names that group by split and task in the UI ("test/topic/macro_f1")."""

from __future__ import annotations

import math


def flat_metrics(results: dict[str, dict[str, dict]]) -> dict[str, float]:
    """Flat metric names that group well in the MLflow UI, e.g. "test/topic/macro_f1", "test/topic/f1/sports".

    None and non-finite values are left out. Name parts are sanitized for MLflow: letters, digits, _ - . / and
    space are kept, anything else becomes "_".
    """
    flat: dict[str, float] = {}
    for split, tasks in results.items():
        for task, metrics in tasks.items():
            prefix = f"{metric_name_part(split)}/{metric_name_part(task)}"
            for name, value in task_metric_items(metrics):
                if value is not None and math.isfinite(value):
                    flat[f"{prefix}/{name}"] = float(value)
    return flat



def task_metric_items(metrics: dict) -> list[tuple[str, float | None]]:
    """(name under split/task, value) pairs of one task's metrics, values possibly None."""
    ci = metrics.get("macro_f1_ci") or [None, None]
    items = [(key, metrics.get(key)) for key in ("accuracy", "macro_f1", "weighted_f1")]
    items += [("macro_f1_ci_low", ci[0]), ("macro_f1_ci_high", ci[1])]
    for label, m in metrics.get("per_class", {}).items():
        items += [(f"{key}/{metric_name_part(label)}", m[key]) for key in ("f1", "precision", "recall")]
    positive = metrics.get("positive")
    if positive:
        items += [(f"positive_{key}", positive[key]) for key in ("f1", "precision", "recall")]
        items.append(("average_precision", positive["average_precision"]))
    for group, m in (metrics.get("per_group") or {}).items():
        items.append((f"group/{metric_name_part(group)}/macro_f1", m["macro_f1"]))
    return items



def metric_name_part(name: str) -> str:
    """`name` with every character MLflow refuses in metric names replaced by "_"."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in str(name))
