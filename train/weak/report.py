"""The report of `taawun weak apply`: per task and rule, how much the rules vote, agree and are right.

On the input articles (shares of all of them): a rule's `coverage` (it votes), `overlap` (it votes and another rule
of the task votes too) and `conflict` (it votes and another rule votes another label), as Snorkel's LFAnalysis
defines them; `estimated_accuracy` is the label model's own estimate, from no gold label. On gold articles: each
rule's accuracy where it votes, and the label model's where its label reaches the confidence threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.evaluation.metrics import summary_metrics
from train.evaluation.tables import format_line, format_number
from train.schema import Task
from train.weak.label_model import ABSTAIN, DawidSkene


def rule_figures(task: Task, votes: np.ndarray, labels: list[str | None], model: DawidSkene) -> dict[str, Any]:
    """A task's figures on the input articles: silver label counts, the label model's prior, each rule's rates."""
    voted = votes != ABSTAIN
    n = max(len(votes), 1)
    estimated = model.rule_accuracy(votes)
    rules = []
    for j, rule in enumerate(task.rules):
        others = np.delete(voted, j, axis=1).any(axis=1)
        differ = (voted & (votes != votes[:, [j]])).any(axis=1)
        rules.append({"name": rule.name, "label": rule.label, "votes": int(voted[:, j].sum()),
                      "coverage": voted[:, j].sum() / n, "overlap": (voted[:, j] & others).sum() / n,
                      "conflict": (voted[:, j] & differ).sum() / n,
                      "estimated_accuracy": None if np.isnan(estimated[j]) else round(float(estimated[j]), 4)})
    counts = {label: sum(1 for value in labels if value == label) for label in task.label_names}
    return {"labelled": sum(counts.values()), "labels": counts, "rules": rules,
            "label_model": {"prior": dict(zip(task.label_names, np.round(model.prior, 4).tolist(), strict=True)),
                            "iterations": model.iterations}}


def gold_figures(task: Task, figures: dict[str, Any], gold, model: DawidSkene, min_confidence: float) -> None:
    """Add each rule's accuracy on the gold articles it votes on, and the label model's, to a task's figures."""
    votes, truth = gold.votes[task.name], gold.labels[task.name]
    known = truth != ABSTAIN
    for j, rule in enumerate(figures["rules"]):
        covered = known & (votes[:, j] != ABSTAIN)
        right = (votes[covered, j] == truth[covered]).mean() if covered.any() else None
        rule["gold"] = {"n": int(covered.sum()), "accuracy": None if right is None else float(right)}
    proba = model.predict_proba(votes)
    confident = known & (np.nan_to_num(proba).max(axis=1) >= min_confidence)
    predicted = np.nan_to_num(proba).argmax(axis=1)
    result = {"n": int(known.sum()), "labelled": int(confident.sum()),
              "coverage": float(confident.sum() / known.sum()) if known.any() else None}
    y_true, y_pred = truth[confident], predicted[confident]
    metrics = summary_metrics(y_true, y_pred, np.union1d(y_true, y_pred))
    result.update({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
    if task.positive_label:
        result["positive"] = _positive(task, truth[known], np.where(confident, predicted, ABSTAIN)[known])
    figures["label_model"]["gold"] = result


def _positive(task: Task, truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """The positive class's precision, and recall over every gold positive (an article left unlabelled is missed)."""
    positive = task.label_names.index(task.positive_label)
    hits = int(((predicted == positive) & (truth == positive)).sum())
    claimed, actual = int((predicted == positive).sum()), int((truth == positive).sum())
    precision = hits / claimed if claimed else None
    recall = hits / actual if actual else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if claimed else None)
    return {"label": task.positive_label, "precision": precision, "recall": recall, "f1": f1}


def describe(report: dict[str, Any]) -> str:
    """The report as text: a summary line, then per task its silver labels, a table of rules, the gold figures."""
    n = report["articles"]
    lines = [(f"{n:,} article(s) from {report['input']} in {report['seconds']:.1f} s; silver labels at posterior "
              f">= {report['min_confidence']}")]
    for name, task in report["tasks"].items():
        counts = ", ".join(f"{label} {count:,}" for label, count in task["labels"].items() if count)
        lines += ["", f"{name}: {task['labelled']:,} labelled ({_share(task['labelled'] / max(n, 1))})"
                  + (f": {counts}" if counts else "")]
        lines += _rule_table(task["rules"])
        gold = task["label_model"].get("gold")
        if gold:
            lines.append(_gold_line(gold))
    return "\n".join(lines)


def _rule_table(rules: list[dict[str, Any]]) -> list[str]:
    header = ["  rule", "label", "coverage", "overlap", "conflict", "est. acc"]
    with_gold = any("gold" in rule for rule in rules)
    if with_gold:
        header += ["gold n", "gold acc"]
    rows = []
    for rule in rules:
        row = [f"  {rule['name']}", rule["label"], _share(rule["coverage"]), _share(rule["overlap"]),
               _share(rule["conflict"]), format_number(rule["estimated_accuracy"])]
        if with_gold:
            row += [str(rule["gold"]["n"]), format_number(rule["gold"]["accuracy"])]
        rows.append(row)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return [format_line(header, widths), *(format_line(row, widths) for row in rows)]


def _gold_line(gold: dict[str, Any]) -> str:
    line = (f"  label model on gold: {gold['labelled']} of {gold['n']} labelled, accuracy "
            f"{format_number(gold['accuracy'])}, macro-F1 {format_number(gold['macro_f1'])}")
    positive = gold.get("positive")
    if positive:
        line += (f"; {positive['label']}: precision {format_number(positive['precision'])}, recall "
                 f"{format_number(positive['recall'])}, F1 {format_number(positive['f1'])} (recall over every "
                 "gold positive)")
    return line


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"
