"""train/evaluation: metrics equal scikit-learn's, the bootstrap interval, files, plots, flat names, the table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

from train.evaluation.artifacts import write_evaluation
from train.evaluation.metrics import (
    BLOCK,
    TaskPredictions,
    compute_metrics,
    macro_f1_of_counts,
    misclassified,
    resample_counts,
)
from train.evaluation.plots import plot_confusion_matrix
from train.evaluation.tables import format_table
from train.tracking.names import flat_metrics

TOPIC_LABELS = ["politics", "sports", "economy", "culture"]  # "culture" is never gold nor predicted
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def noisy_proba(y: np.ndarray, k: int, rng: np.random.Generator, hit: float = 0.7) -> np.ndarray:
    """Probabilities that favour the gold class on about `hit` of the rows (-1 rows get random ones)."""
    proba = rng.dirichlet(np.ones(k), size=len(y))
    favoured = np.where((rng.random(len(y)) < hit) & (y >= 0), y, rng.integers(0, k, len(y)))
    proba[np.arange(len(y)), favoured] += 2.0
    return proba / proba.sum(axis=1, keepdims=True)


def make_topic(n: int = 300, seed: int = 1, groups: bool = False) -> TaskPredictions:
    """A 3-of-4-class task: classes 0..2 used, class 3 in the schema only; every 10th row has no gold label."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    y[::10] = -1
    proba = noisy_proba(np.where(y >= 0, y, 0), 3, rng)
    proba = np.hstack([proba, np.zeros((n, 1))])  # the unused label never wins
    outlets = [("cnn", "bbc", "rt")[i % 3] for i in range(n)] if groups else None
    return TaskPredictions(task="topic", labels=TOPIC_LABELS, y_true=y, proba=proba,
                           ids=[f"a{i}" for i in range(n)], texts=[f"نص المقال {i} " * 40 for i in range(n)],
                           groups=outlets)


def make_binary(n: int = 200, seed: int = 2) -> TaskPredictions:
    """A binary task, positive "yes" (index 0), with a few rows without gold."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.7).astype(np.int64)  # 0 = yes (rarer), 1 = no
    y[::15] = -1
    proba = noisy_proba(y, 2, rng, hit=0.75)
    return TaskPredictions(task="bilateral_security_cooperation", labels=["yes", "no"], y_true=y, proba=proba,
                           ids=[f"b{i}" for i in range(n)], texts=[f"text {i}" for i in range(n)], positive="yes")


def gold_arrays(pred: TaskPredictions) -> tuple[np.ndarray, np.ndarray]:
    keep = pred.y_true >= 0
    return pred.y_true[keep], pred.proba[keep].argmax(axis=1)


def only_plain_types(value) -> bool:
    """True when `value` holds only JSON's own Python types (no numpy scalars or arrays)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_plain_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_plain_types(v) for v in value)
    return value is None or type(value) in (int, float, str, bool)


# --- point metrics ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [make_topic, make_binary])
def test_point_metrics_equal_sklearn(make):
    pred = make()
    metrics = compute_metrics(pred, bootstrap=0)
    y_true, y_pred = gold_arrays(pred)
    present = sorted(set(y_true) | set(y_pred))
    assert metrics["n"] == len(y_true) < len(pred.y_true)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    for average in ("macro", "weighted"):
        expected = f1_score(y_true, y_pred, labels=present, average=average, zero_division=0)
        assert metrics[f"{average}_f1"] == pytest.approx(expected, abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(len(pred.labels)), zero_division=0)
    assert list(metrics["per_class"]) == pred.labels
    for i, name in enumerate(pred.labels):
        assert metrics["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i],
                                                            "support": s[i]}, abs=1e-12)
    expected_cm = confusion_matrix(y_true, y_pred, labels=range(len(pred.labels)))
    assert np.array_equal(np.array(metrics["confusion_matrix"]), expected_cm)
    assert np.array(metrics["confusion_matrix"]).shape == (len(pred.labels),) * 2
    assert metrics["macro_f1_ci"] is None


def test_unused_schema_label_is_reported_with_zero_support_but_not_averaged():
    metrics = compute_metrics(make_topic(), bootstrap=0)
    assert metrics["per_class"]["culture"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert [row[3] for row in metrics["confusion_matrix"]] == [0, 0, 0, 0]
    three_class_mean = np.mean([metrics["per_class"][name]["f1"] for name in TOPIC_LABELS[:3]])
    assert metrics["macro_f1"] == pytest.approx(three_class_mean)


def test_rows_without_gold_are_ignored_everywhere():
    pred = make_topic(groups=True)
    keep = np.flatnonzero(pred.y_true >= 0)
    scrambled = pred.proba.copy()
    scrambled[pred.y_true < 0] = np.eye(4)[3]  # would count as "culture" predictions if they leaked in
    with_unlabelled = TaskPredictions(pred.task, pred.labels, pred.y_true, scrambled, pred.ids, pred.texts,
                                      pred.groups)
    without = TaskPredictions(pred.task, pred.labels, pred.y_true[keep], pred.proba[keep],
                              [pred.ids[i] for i in keep], [pred.texts[i] for i in keep],
                              [pred.groups[i] for i in keep])
    assert compute_metrics(with_unlabelled, bootstrap=50) == compute_metrics(without, bootstrap=50)
    assert misclassified(with_unlabelled) == misclassified(without)


def test_metrics_are_plain_json():
    for pred in (make_topic(groups=True), make_binary()):
        metrics = compute_metrics(pred, bootstrap=20)
        assert only_plain_types(metrics)
        assert json.loads(json.dumps(metrics)) == metrics


def test_task_without_any_gold_label_gives_none_not_an_error():
    pred = make_topic(n=20)
    pred.y_true[:] = -1
    metrics = compute_metrics(pred)
    assert metrics["n"] == 0
    assert metrics["accuracy"] is metrics["macro_f1"] is metrics["macro_f1_ci"] is None
    assert metrics["per_class"]["politics"]["support"] == 0
    assert flat_metrics({"test": {"topic": metrics}}) == {
        f"test/topic/{kind}/{label}": 0.0 for kind in ("f1", "precision", "recall") for label in TOPIC_LABELS}


@pytest.mark.parametrize("change, message", [
    (dict(proba=np.full((3, 3), 1 / 3)), "proba has shape"),
    (dict(y_true=np.array([0, 1, 2])), "outside -1..1"),
    (dict(ids=["a"]), "ids has 1 entries"),
    (dict(positive="maybe"), "positive label 'maybe'"),
])
def test_inconsistent_predictions_are_refused_with_the_field_named(change, message):
    fields = dict(task="t", labels=["yes", "no"], y_true=np.array([0, 1, -1]), proba=np.full((3, 2), 0.5),
                  ids=["a", "b", "c"], texts=["x", "y", "z"], positive="yes")
    with pytest.raises(ValueError, match=message):
        TaskPredictions(**{**fields, **change})


# --- bootstrap -------------------------------------------------------------------------------------------------

def reference_interval(pred: TaskPredictions, resamples: int, confidence: float, seed: int) -> list[float]:
    """The slow, obvious bootstrap: the same index draws, scikit-learn's f1_score on each resample.

    Each resample is scored as scikit-learn scores one sample: over the labels present in its gold or predictions.
    """
    y_true, y_pred = gold_arrays(pred)
    rows = np.random.default_rng(seed).integers(0, len(y_true), size=(resamples, len(y_true)))
    scores = [f1_score(y_true[r], y_pred[r], average="macro", zero_division=0) for r in rows]
    tail = (1 - confidence) / 2 * 100
    return list(np.percentile(scores, [tail, 100 - tail]))


@pytest.mark.parametrize("make, resamples, confidence, seed", [
    (make_topic, 7, 0.95, 0),
    (make_binary, 5, 0.9, 3),
    (lambda: make_topic(n=12, seed=5), 9, 0.8, 11),  # tiny: resamples often miss a class (zero_division path)
    (lambda: make_topic(n=15, seed=6), BLOCK + 3, 0.95, 1),  # crosses a block boundary
])
def test_bootstrap_equals_slow_reference_loop(make, resamples, confidence, seed):
    pred = make()
    interval = compute_metrics(pred, bootstrap=resamples, confidence=confidence, seed=seed)["macro_f1_ci"]
    assert interval == pytest.approx(reference_interval(pred, resamples, confidence, seed), abs=1e-12)


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    pred = make_topic(n=600)
    metrics = compute_metrics(pred, seed=4)
    low, high = metrics["macro_f1_ci"]
    assert low < metrics["macro_f1"] < high
    assert compute_metrics(pred, seed=4)["macro_f1_ci"] == [low, high]
    assert compute_metrics(pred, seed=5)["macro_f1_ci"] != [low, high]
    assert metrics["bootstrap"] == {"resamples": 1000, "confidence": 0.95, "seed": 4}


def pattern_predictions(n: int) -> TaskPredictions:
    """The same per-row pattern at any n: cycling gold labels, every 4th prediction wrong."""
    y = np.arange(n) % 3
    predicted = np.where(np.arange(n) % 4 == 0, (y + 1) % 3, y)
    return TaskPredictions("topic", TOPIC_LABELS[:3], y, np.eye(3)[predicted], [str(i) for i in range(n)],
                           [""] * n)


def test_bootstrap_interval_narrows_with_more_data():
    small, large = (compute_metrics(pattern_predictions(n)) for n in (200, 2000))
    assert small["accuracy"] == pytest.approx(large["accuracy"], abs=0.01)
    width = lambda m: m["macro_f1_ci"][1] - m["macro_f1_ci"][0]  # noqa: E731
    assert width(large) < 0.5 * width(small)
    assert large["macro_f1_ci"][0] < large["macro_f1"] < large["macro_f1_ci"][1]


def test_a_perfect_classifier_has_the_interval_1_1():
    y = np.array([0] * 40 + [1] * 5 + [2] * 2 + [3])  # rare labels: many resamples lack them
    pred = TaskPredictions("topic", TOPIC_LABELS, y, np.eye(4)[y], [str(i) for i in range(len(y))], [""] * len(y))
    metrics = compute_metrics(pred, bootstrap=2000, seed=0)
    assert metrics["macro_f1"] == 1.0 and metrics["macro_f1_ci"] == [1.0, 1.0]


def _plain_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn's f1_score(average="macro", zero_division=0) over the labels present, written out (20x faster)."""
    scores = []
    for label in np.union1d(y_true, y_pred):
        tp = np.sum((y_true == label) & (y_pred == label))
        denominator = np.sum(y_true == label) + np.sum(y_pred == label)
        scores.append(2 * tp / denominator)
    return float(np.mean(scores))


def test_plain_macro_f1_is_sklearns():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 30), rng.integers(0, 5, 30)
    assert _plain_macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_interval_agrees_with_scipy_bootstrap():
    """A known case with a rare label (2 of 80 articles), where counting a missing label as F1 0 was 0.1 too low."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(7)
    y = np.array([0] * 50 + [1] * 20 + [2] * 8 + [3] * 2)
    predicted = np.where(rng.random(len(y)) < 0.85, y, rng.choice(3, size=len(y)))
    ids = [str(i) for i in range(len(y))]
    pred = TaskPredictions("topic", TOPIC_LABELS, y, np.eye(4)[predicted], ids, [""] * len(y))
    ours = compute_metrics(pred, bootstrap=4000, seed=1)["macro_f1_ci"]
    theirs = bootstrap((y, predicted), _plain_macro_f1, paired=True, vectorized=False, n_resamples=4000,
                       method="percentile", random_state=2).confidence_interval
    assert ours == pytest.approx([theirs.low, theirs.high], abs=0.01)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40))
def test_vectorized_macro_f1_equals_sklearn(pairs):
    y_true, y_pred = (np.array(column) for column in zip(*pairs))
    present = np.union1d(y_true, y_pred)
    counts = resample_counts((y_true * 5 + y_pred)[None, :], 5)
    expected = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert macro_f1_of_counts(counts)[0] == pytest.approx(expected, abs=1e-12)


# --- binary and groups -----------------------------------------------------------------------------------------

def test_binary_positive_block_and_pr_curve_equal_sklearn():
    pred = make_binary()
    metrics = compute_metrics(pred, bootstrap=0)
    y_true, _ = gold_arrays(pred)
    scores = pred.proba[pred.y_true >= 0, 0]
    gold = (y_true == 0).astype(int)
    positive = metrics["positive"]
    assert positive["label"] == "yes"
    assert positive["average_precision"] == pytest.approx(average_precision_score(gold, scores), abs=1e-12)
    for key in ("precision", "recall", "f1"):
        assert positive[key] == metrics["per_class"]["yes"][key]
    precision, recall, thresholds = precision_recall_curve(gold, scores)
    assert metrics["pr_curve"]["precision"] == pytest.approx(precision.tolist())
    assert metrics["pr_curve"]["recall"] == pytest.approx(recall.tolist())
    assert metrics["pr_curve"]["thresholds"] == pytest.approx(thresholds.tolist())


def test_binary_without_gold_positive_has_no_ap_nor_curve():
    pred = make_binary()
    pred.y_true[pred.y_true == 0] = 1
    metrics = compute_metrics(pred, bootstrap=0)
    assert metrics["positive"]["average_precision"] is None
    assert metrics["pr_curve"] is None
    assert "positive" not in compute_metrics(make_topic(), bootstrap=0)


def test_per_group_metrics_equal_sklearn_on_each_subset():
    pred = make_topic(groups=True)
    per_group = compute_metrics(pred, bootstrap=0)["per_group"]
    assert sorted(per_group) == ["bbc", "cnn", "rt"]
    y_true, y_pred = gold_arrays(pred)
    groups = np.array(pred.groups)[pred.y_true >= 0]
    for name, metrics in per_group.items():
        mask = groups == name
        assert metrics["n"] == mask.sum()
        assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true[mask], y_pred[mask]), abs=1e-12)
        expected = f1_score(y_true[mask], y_pred[mask], average="macro", zero_division=0)
        assert metrics["macro_f1"] == pytest.approx(expected, abs=1e-12)


def test_single_group_gives_no_per_group_block():
    pred = make_topic()
    pred.groups = ["cnn"] * len(pred.y_true)
    assert "per_group" not in compute_metrics(pred, bootstrap=0)


# --- misclassified ---------------------------------------------------------------------------------------------

def test_misclassified_lists_mistakes_most_confident_first():
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0], [0.1, 0.2, 0.7], [0.05, 0.95, 0.0]])
    pred = TaskPredictions("stance", ["supportive", "neutral", "critical"], np.array([0, 0, 0, 2, -1]), proba,
                           ["a", "b", "c", "d", "e"], ["ن" * 500, "short", "third", "fourth", "no gold"])
    rows = misclassified(pred)
    assert [r["id"] for r in rows] == ["b", "c"]  # "a" and "d" are right; "e" has no gold label
    assert rows[0] == {"id": "b", "task": "stance", "true": "supportive", "predicted": "neutral",
                       "confidence": 0.8, "probabilities": {"supportive": 0.2, "neutral": 0.8, "critical": 0.0},
                       "text": "short"}
    assert misclassified(pred, limit=1) == rows[:1]
    assert all(len(r["text"]) <= 300 for r in misclassified(make_topic()))
    confidences = [r["confidence"] for r in misclassified(make_topic())]
    assert confidences == sorted(confidences, reverse=True) and confidences


# --- files and plots -------------------------------------------------------------------------------------------

def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1024
    assert path.read_bytes()[:8] == PNG_MAGIC


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_write_evaluation_writes_every_artifact(tmp_path):
    predictions = {split: {"topic": make_topic(seed=seed, groups=True), "bilateral_security_cooperation":
                           make_binary(seed=seed)} for split, seed in (("validation", 3), ("test", 4))}
    results = {split: {task: compute_metrics(p, bootstrap=100) for task, p in tasks.items()}
               for split, tasks in predictions.items()}
    paths = write_evaluation(results, predictions, tmp_path / "eval")
    folder = tmp_path / "eval"
    expected = {folder / "metrics.json"}
    for split in ("validation", "test"):
        expected.add(folder / "misclassified" / f"{split}.jsonl")
        expected.add(folder / "pr_curve" / f"{split}_bilateral_security_cooperation.png")
        for task in ("topic", "bilateral_security_cooperation"):
            expected |= {folder / "confusion" / f"{split}_{task}.png", folder / "confusion" / f"{split}_{task}.csv",
                         folder / "per_class" / f"{split}_{task}.csv"}
    assert set(paths) == expected and len(paths) == len(expected)
    for path in paths:
        if path.suffix == ".png":
            assert_png(path)
    assert json.loads((folder / "metrics.json").read_text(encoding="utf-8")) == results
    confusion = read_csv(folder / "confusion" / "test_topic.csv")
    assert confusion[0] == ["true\\predicted", *TOPIC_LABELS]
    assert [row[0] for row in confusion[1:]] == TOPIC_LABELS
    assert [[int(c) for c in row[1:]] for row in confusion[1:]] == results["test"]["topic"]["confusion_matrix"]
    per_class = read_csv(folder / "per_class" / "test_topic.csv")
    assert per_class[0] == ["label", "precision", "recall", "f1", "support"]
    assert [row[0] for row in per_class[1:]] == TOPIC_LABELS
    lines = (folder / "misclassified" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    expected_count = sum(len(misclassified(p)) for p in predictions["test"].values())
    assert len(rows) == expected_count > 0
    assert {r["split"] for r in rows} == {"test"}
    assert {r["task"] for r in rows} == {"topic", "bilateral_security_cooperation"}


def test_write_evaluation_refuses_results_without_predictions(tmp_path):
    pred = make_topic()
    with pytest.raises(ValueError, match="test/topic"):
        write_evaluation({"test": {"topic": compute_metrics(pred, bootstrap=0)}}, {"test": {}}, tmp_path)


def test_confusion_plot_with_twelve_labels(tmp_path):
    labels = [f"section_{i}" for i in range(12)]
    matrix = (np.random.default_rng(0).integers(0, 50, (12, 12)) + np.eye(12, dtype=int) * 200).tolist()
    matrix[5] = [0] * 12  # a label with no gold articles must not divide by zero
    path = plot_confusion_matrix(matrix, labels, "12 sections", tmp_path / "deep" / "cm.png")
    assert_png(path)
    small = plot_confusion_matrix([[3, 1], [0, 4]], ["yes", "no"], "two", tmp_path / "small.png")
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(path) as large_image, Image.open(small) as small_image:
        assert large_image.size[0] > small_image.size[0]  # the figure grows with the number of labels


# --- flat names and the table ----------------------------------------------------------------------------------

def test_flat_metrics_names_and_values():
    pred = make_topic(groups=True)
    pred.groups = [("CNN Arabic", "bbc:arabic", "rt")[i % 3] for i in range(len(pred.y_true))]
    results = {"test": {"topic": compute_metrics(pred, bootstrap=100),
                        "bilateral_security_cooperation": compute_metrics(make_binary(), bootstrap=100)}}
    flat = flat_metrics(results)
    topic = results["test"]["topic"]
    assert flat["test/topic/macro_f1"] == topic["macro_f1"]
    assert flat["test/topic/macro_f1_ci_low"] == topic["macro_f1_ci"][0]
    assert flat["test/topic/macro_f1_ci_high"] == topic["macro_f1_ci"][1]
    for name in ("accuracy", "weighted_f1", "f1/culture", "precision/sports", "recall/economy",
                 "macro_f1_by_group/CNN Arabic", "macro_f1_by_group/bbc_arabic", "macro_f1_by_group/rt"):
        assert f"test/topic/{name}" in flat
    for name in ("positive_f1", "positive_precision", "positive_recall", "average_precision", "f1/yes"):
        assert f"test/bilateral_security_cooperation/{name}" in flat
    assert "test/topic/positive_f1" not in flat
    assert all(type(v) is float and math.isfinite(v) for v in flat.values())


def test_flat_metrics_leave_out_none_values():
    pred = make_binary()
    pred.y_true[pred.y_true == 0] = 1  # no gold positive: AP is None
    flat = flat_metrics({"test": {"b": compute_metrics(pred, bootstrap=0)}})
    assert "test/b/average_precision" not in flat and "test/b/macro_f1_ci_low" not in flat
    assert "test/b/positive_f1" in flat


def test_format_table_has_one_row_per_task():
    results = {"test": {"topic": compute_metrics(make_topic()),
                        "bilateral_security_cooperation": compute_metrics(make_binary())}}
    table = format_table(results)
    lines = table.splitlines()
    assert "macro-F1 [95% CI]" in lines[0] and "positive F1" in lines[0]
    topic = next(line for line in lines if line.startswith("topic"))
    binary = next(line for line in lines if line.startswith("bilateral_security_cooperation"))
    m = results["test"]["topic"]
    assert f"{m['macro_f1']:.3f} [{m['macro_f1_ci'][0]:.3f}, {m['macro_f1_ci'][1]:.3f}]" in topic
    assert str(m["n"]) in topic and topic.endswith("-")
    assert binary.endswith(f"{results['test']['bilateral_security_cooperation']['positive']['f1']:.3f}")
    with pytest.raises(ValueError, match="available: test"):
        format_table(results, split="validation")
    assert "note:" not in table  # every predicted label has gold articles


def test_format_table_notes_a_predicted_label_without_gold_articles():
    pred = make_topic()
    pred.proba[1:8, 3] = 5.0  # seven gold-labelled articles predicted as the fourth label, which no gold article has
    m = compute_metrics(pred)
    table = format_table({"test": {"topic": m}})
    assert f"note: topic: predicted but in no gold label here: {TOPIC_LABELS[3]} (7x)" in table
    assert m["per_class"][TOPIC_LABELS[3]]["f1"] == 0.0 and m["per_class"][TOPIC_LABELS[3]]["support"] == 0


def test_labelled_macro_f1_scores_only_rows_with_a_gold_label():
    from train.evaluation.metrics import labelled_macro_f1

    pred = make_topic()  # every 10th row has no gold label
    y_true, y_pred = gold_arrays(pred)
    assert labelled_macro_f1(pred.y_true, pred.proba) == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert len(y_true) < len(pred.y_true)
