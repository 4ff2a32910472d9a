"""Label priors: the reference saved with a model, temperature calibration, and EM adaptation to a batch."""

from __future__ import annotations

import numpy as np
import pytest

from train.models.priors import adapt, adapt_tasks, adapted_threshold, calibrate, reference_priors, temperature
from train.schema import Task

UNCALIBRATED = {"temperature": 1.0}


def test_without_validation_the_reference_is_the_weighted_training_share_of_each_label():
    task = Task(name="topic", labels=["a", "b", "c"])
    labels = {"topic": np.array([0, 0, 1, -1])}
    reference = reference_priors([task], labels, np.array([1.0, 0.5, 2.0, 5.0]))["topic"]
    assert reference["prior"] == pytest.approx([1.5 / 3.5, 2 / 3.5, 0.0])
    assert reference["temperature"] == 1.0 and reference["from"] == "training labels"
    assert reference_priors([task], labels, None)["topic"]["prior"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert reference_priors([task], {"topic": np.array([-1, -1])}, None) == {}


def test_with_validation_the_temperature_sharpens_an_underconfident_model():
    # The model is right 90% of the time but says 0.6: the fitted temperature makes its probabilities say 0.9.
    task = Task(name="yes_no", labels=["no", "yes"])
    y = np.r_[np.zeros(500, dtype=int), np.ones(500, dtype=int)]
    right = np.arange(1000) % 10 != 0
    said = np.where(right, y, 1 - y)
    proba = np.c_[np.where(said == 0, 0.6, 0.4), np.where(said == 1, 0.6, 0.4)]
    reference = reference_priors([task], {"yes_no": y}, None, {"yes_no": y}, {"yes_no": proba})["yes_no"]
    assert reference["from"] == "validation"
    assert calibrate(proba, reference["temperature"])[1] == pytest.approx([0.9, 0.1], abs=0.005)  # said 0.6, right
    assert temperature(proba, y) == pytest.approx(np.log(1.5) / np.log(9), rel=0.01)
    assert reference["prior"] == pytest.approx([0.5, 0.5], abs=0.01)


def test_adaptation_recovers_a_shifted_label_proportion_and_mends_decisions():
    # Two classes, x ~ N(-1, 1) and N(1, 1), equally frequent in training: the exact posterior is sigmoid(2x).
    # The new batch holds 80% of the first class; EM must find that from the probabilities alone.
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(8000, dtype=int), np.ones(2000, dtype=int)]
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    positive = 1 / (1 + np.exp(-2 * x))
    proba = np.c_[1 - positive, positive]
    adapted, estimate = adapt(proba, {"prior": [0.5, 0.5], **UNCALIBRATED})
    assert estimate == pytest.approx([0.8, 0.2], abs=0.02)
    assert (adapted.argmax(1) == y).mean() > (proba.argmax(1) == y).mean() + 0.03
    # The Bayes posterior under the true proportions, which EM's fixed point approaches.
    exact = 0.2 * positive / (0.2 * positive + 0.8 * (1 - positive))
    assert np.abs(adapted[:, 1] - exact).mean() < 0.01


def test_adaptation_counts_certain_predictions_and_leaves_unseen_labels_at_zero():
    proba = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    adapted, estimate = adapt(proba, {"prior": [0.25, 0.75, 0.0], **UNCALIBRATED})
    assert estimate == pytest.approx([0.75, 0.25, 0.0])
    assert np.array_equal(adapted, proba)
    mixed = np.array([[0.4, 0.3, 0.3], [0.2, 0.5, 0.3]])
    adapted, estimate = adapt(mixed, {"prior": [0.5, 0.5, 0.0], "temperature": 0.5})
    assert np.all(adapted[:, 2] == 0) and adapted.sum(1) == pytest.approx([1, 1])
    # At the fixed point, the mean re-weighed probability is the estimate.
    assert adapted.mean(0) == pytest.approx(estimate, abs=1e-5)
    empty = np.zeros((0, 3))
    assert adapt(empty, {"prior": [0.5, 0.5, 0.0], **UNCALIBRATED})[0] is empty


def test_a_threshold_moves_with_the_probabilities_so_that_it_decides_the_same_articles_before_the_shift():
    reference = {"prior": [0.8, 0.2], "temperature": 0.5}
    estimate = np.array([0.6, 0.4])
    moved = adapted_threshold(0.3, reference, estimate, positive=1)
    # By hand: odds 0.3/0.7, to the power 1/0.5, times (0.4/0.2)/(0.6/0.8).
    odds = (0.3 / 0.7) ** 2 * (0.4 / 0.2) / (0.6 / 0.8)
    assert moved == pytest.approx(odds / (1 + odds))
    # An article exactly at the old threshold lands exactly at the new one after calibration and re-weighing.
    at = calibrate(np.array([[0.7, 0.3]]), 0.5) * (estimate / np.asarray(reference["prior"]))
    assert (at / at.sum())[0, 1] == pytest.approx(moved)


def test_a_task_that_applies_only_under_a_label_is_adapted_on_the_articles_it_applies_to():
    from train.schema import AppliesWhen

    topic = Task(name="topic", labels=["security", "sports"])
    coop = Task(name="coop", labels=["no", "yes"], applies_when=AppliesWhen(task="topic", labels=["security"]))
    proba = {"topic": np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]]),
             "coop": np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])}
    references = {"topic": {"prior": [0.5, 0.5], **UNCALIBRATED}, "coop": {"prior": [0.5, 0.5], **UNCALIBRATED}}
    adapted, estimates, _ = adapt_tasks([topic, coop], proba, references, {})
    # The third article is sports: its coop probabilities are not counted, and are left as they were.
    assert estimates["coop"] == pytest.approx({"no": 0.5, "yes": 0.5})
    assert np.array_equal(adapted["coop"][2], proba["coop"][2])
