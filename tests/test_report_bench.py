"""bench/report.py pools cross-validation folds from their confusion matrices: the numbers must equal scoring the
pooled predictions directly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import bench_module
from train.evaluation.metrics import TaskPredictions, compute_metrics


def _predictions(rng, n: int, labels: list[str], positive: str | None) -> TaskPredictions:
    y_true = rng.integers(0, len(labels) - 1, n)  # the last label is never gold: "present" labels must still count
    proba = rng.random((n, len(labels)))
    proba[np.arange(n), y_true] += rng.random(n)  # better than chance, not perfect
    return TaskPredictions(task="t", labels=labels, y_true=y_true, proba=proba, ids=[str(i) for i in range(n)],
                           texts=[""] * n, positive=positive)


@pytest.mark.parametrize(("labels", "positive"), [(["a", "b", "c", "d"], None), (["yes", "no", "unused"], "yes")])
def test_pooled_folds_equal_the_metrics_of_all_predictions(labels, positive):
    report = bench_module("report")
    rng = np.random.default_rng(3)
    folds = [_predictions(rng, n, labels, positive) for n in (40, 37, 45)]
    matrices = [compute_metrics(fold, bootstrap=0)["confusion_matrix"] for fold in folds]
    whole = TaskPredictions(task="t", labels=labels, y_true=np.concatenate([f.y_true for f in folds]),
                            proba=np.vstack([f.proba for f in folds]), ids=[str(i) for i in range(122)],
                            texts=[""] * 122, positive=positive)
    expected = compute_metrics(whole, bootstrap=1000)
    pooled = report.pooled(matrices, labels, positive)
    assert pooled["n"] == 122
    assert pooled["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert pooled["accuracy"] == pytest.approx(expected["accuracy"])
    assert pooled["confusion"] == expected["confusion_matrix"]
    low, high = pooled["ci"]
    assert low < pooled["macro_f1"] < high
    assert low == pytest.approx(expected["macro_f1_ci"][0], abs=0.05)  # same bootstrap, rows in another order
    assert high == pytest.approx(expected["macro_f1_ci"][1], abs=0.05)
    if positive:
        assert pooled["positive_f1"] == pytest.approx(expected["per_class"][positive]["f1"])
