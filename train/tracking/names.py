"""Metric names for MLflow: flat names that group by split and task in the UI ("test/topic/macro_f1").

The MLflow UI makes a chart section of everything before a name's last "/": `test/topic/macro_f1` goes to section
`test/topic`, `test/topic/f1/sports` to `test/topic/f1`, and the macro-F1 of every outlet to one section,
`test/topic/macro_f1_by_group`.
"""

from __future__ import annotations

import math

HEADLINE = ("macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "positive_f1", "accuracy", "weighted_f1")


def flat_metrics(results: dict[str, dict[str, dict]]) -> dict[str, float]:
    """Flat metric names that group well in the MLflow UI, e.g. "test/topic/macro_f1", "test/topic/f1/sports".

    None and non-finite values are left out. Name parts are sanitized for MLflow: letters, digits, _ - . / and
    space are kept, anything else becomes "_". The order is the order the run page lists them in: the headline
    figures of every split and task first (the test split's before the others), then the details.
    """
    headline, details = [], []
    for split in sorted(results, key=lambda name: name != "test"):
        for task, metrics in results[split].items():
            prefix = f"{metric_name_part(split)}/{metric_name_part(task)}"
            for name, value in task_metric_items(metrics):
                if value is not None and math.isfinite(value):
                    (headline if name in HEADLINE else details).append((f"{prefix}/{name}", float(value)))
    return dict(headline + details)


def headline_names(results: dict[str, dict[str, dict]]) -> list[str]:
    """The names of the scores a runs table shows: macro-F1 of every task (positive-class F1 too for binary tasks) on
    the test split, else the first split evaluated."""
    split = "test" if "test" in results else next(iter(results))
    names = []
    for task, metrics in results[split].items():
        prefix = f"{metric_name_part(split)}/{metric_name_part(task)}"
        names += [f"{prefix}/macro_f1"] + ([f"{prefix}/positive_f1"] if metrics.get("positive") else [])
    return names


def task_metric_items(metrics: dict) -> list[tuple[str, float | None]]:
    """(name under split/task, value) pairs of one task's metrics, values possibly None."""
    ci = metrics.get("macro_f1_ci") or [None, None]
    items = [("macro_f1", metrics.get("macro_f1")), ("macro_f1_ci_low", ci[0]), ("macro_f1_ci_high", ci[1])]
    items += [(key, metrics.get(key)) for key in ("accuracy", "weighted_f1")]
    positive = metrics.get("positive")
    if positive:
        items += [(f"positive_{key}", positive[key]) for key in ("f1", "precision", "recall")]
        items.append(("average_precision", positive["average_precision"]))
    for label, m in metrics.get("per_class", {}).items():
        items += [(f"{key}/{leaf(label)}", m[key]) for key in ("f1", "precision", "recall")]
    for label, share in (metrics.get("estimated_priors") or {}).items():
        items.append((f"estimated_prior/{leaf(label)}", share))
    for group, m in (metrics.get("per_group") or {}).items():
        items.append((f"macro_f1_by_group/{leaf(group)}", m["macro_f1"]))
    return items


def metric_name_part(name: str) -> str:
    """`name` with every character MLflow refuses in metric names replaced by "_"."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in str(name))


def leaf(name: str) -> str:
    """A label or group name as the last part of a metric name: a "/" in it would open a chart section of its own."""
    return metric_name_part(name).replace("/", "_")
