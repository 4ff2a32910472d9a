"""Label priors: what a model outputs on articles like its training data, and its adaptation to a batch of new ones.

A new outlet files its articles under the labels in other proportions than the training data did (CNN's middleEast
half, against a fifth in training). `adapt` re-estimates the labels' proportions in a batch from the model's own
probabilities, without a label, and re-weighs each article's probabilities by the ratio of the new proportion to the
reference one: the EM of Saerens, Latinne and Decaestecker (2002), "Adjusting the outputs of a classifier to new a
priori probabilities". EM trusts the probabilities: a miscalibrated model drifts to one label (on ANT, a training
outlet held out fell from 0.72 to 0.09 macro-F1). So the probabilities are first calibrated by a temperature fit on
the validation split (Guo et al. 2017), and the reference proportions are the calibrated model's mean output on the
validation split. A bias per label besides the temperature (Alexandari et al. 2020) did no better on the three
training outlets of ANT held out in turn, and a single parameter is what a validation split of a few dozen gold
articles can fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from train.schema import Task

ITERATIONS = 1000
TOLERANCE = 1e-6
FLOOR = 1e-12  # log of a zero probability


def reference_priors(tasks: Sequence[Task], labels: dict[str, np.ndarray], weights: np.ndarray | None,
                     validation_labels: dict[str, np.ndarray] | None = None,
                     validation_proba: dict[str, np.ndarray] | None = None) -> dict[str, dict]:
    """{task: {"prior", "temperature", "from"}}: saved with the model, read by `adapt`.

    With validation articles labelled for the task, the temperature is fit on them and the prior is the calibrated
    model's mean probability over them; without, the temperature is 1 and the prior is each label's share of the
    training rows labelled for the task, the rows' sample weights counted.
    """
    priors = {}
    for task in tasks:
        held = np.asarray(validation_labels[task.name]) if validation_labels else np.zeros(0, dtype=int)
        if (held >= 0).any() and validation_proba is not None:
            proba = validation_proba[task.name][held >= 0]
            scale = temperature(proba, held[held >= 0])
            priors[task.name] = {"prior": calibrate(proba, scale).mean(axis=0).round(6).tolist(),
                                 "temperature": round(scale, 6), "from": "validation"}
            continue
        y = np.asarray(labels[task.name])
        known = y >= 0
        if not known.any():
            continue
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        counts = np.bincount(y[known], weights=w[known], minlength=len(task.labels))
        priors[task.name] = {"prior": (counts / counts.sum()).round(6).tolist(), "temperature": 1.0,
                             "from": "training labels"}
    return priors


def temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the log-loss of softmax(log(proba) / T) on labels `y` (between 1/50 and 50)."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y))

    def log_loss(log_t: float) -> float:
        z = np.log(np.clip(proba, FLOOR, 1)) / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, y] - np.log(np.exp(z).sum(axis=1))).mean())

    return float(np.exp(minimize_scalar(log_loss, bounds=(-np.log(50), np.log(50)), method="bounded").x))


def calibrate(proba: np.ndarray, scale: float) -> np.ndarray:
    """softmax(log(proba) / scale): sharper for a scale under 1, flatter over 1; zeros stay zero."""
    if scale == 1.0:
        return proba
    z = np.where(proba > 0, np.log(np.clip(proba, FLOOR, 1)) / scale, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def adapt(proba: np.ndarray, reference: dict) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities calibrated and re-weighed for the batch's estimated label proportions, and those proportions.

    A label with reference prior 0 (never seen in training) keeps probability 0. An empty batch is returned as it is.
    """
    prior = np.asarray(reference["prior"], dtype=float)
    if not len(proba):
        return proba, prior
    proba = calibrate(proba, reference["temperature"])
    ratio = np.divide(1.0, prior, out=np.zeros_like(prior), where=prior > 0)

    def reweigh(estimate: np.ndarray) -> np.ndarray:
        weighed = proba * (estimate * ratio)
        totals = weighed.sum(axis=1, keepdims=True)
        return np.divide(weighed, totals, out=np.full_like(weighed, 1 / weighed.shape[1]), where=totals > 0)

    estimate = prior
    for _ in range(ITERATIONS):
        new = reweigh(estimate).mean(axis=0)
        converged = np.abs(new - estimate).max() < TOLERANCE
        estimate = new
        if converged:
            break
    return reweigh(estimate), estimate


def adapted_threshold(threshold: float, reference: dict, estimate: np.ndarray, positive: int) -> float:
    """A binary task's decision threshold moved with its probabilities: an article the threshold made positive before
    adaptation has, after it, odds of (t / (1 - t)) ** (1 / T) times the ratio of the estimated to the reference odds
    of the positive label; that is the new threshold's odds."""
    prior = np.asarray(reference["prior"], dtype=float)
    negative = 1 - positive
    if min(prior[positive], prior[negative], estimate[positive], estimate[negative]) <= 0:
        return threshold  # a label never seen, or estimated absent: the odds have no ratio
    threshold = min(max(threshold, 1e-9), 1 - 1e-9)
    shift = (estimate[positive] / prior[positive]) / (estimate[negative] / prior[negative])
    odds = (threshold / (1 - threshold)) ** (1 / reference["temperature"]) * shift
    return float(odds / (1 + odds))


def adapt_tasks(tasks: Sequence[Task], proba: dict[str, np.ndarray], references: dict[str, dict],
                thresholds: dict[str, float]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]],
                                                       dict[str, float]]:
    """Every task's probabilities adapted (`adapt`) to a batch; the label proportions estimated per task; the decision
    thresholds moved with the probabilities. A task with `applies_when` is adapted on the articles it applies to, once
    the task it depends on is."""
    from train.evaluation.metrics import in_decision_order, predicted_labels

    adapted, estimates, thresholds = dict(proba), {}, dict(thresholds)
    for task in in_decision_order(list(tasks)):
        if task.name not in references:
            continue
        applies = np.ones(len(adapted[task.name]), dtype=bool)
        if task.applies_when:  # where the (adapted) task it depends on predicts one of its labels
            applies = np.asarray([label != "" for label in predicted_labels(tasks, adapted, thresholds)[task.name]],
                                 dtype=bool)
        new, estimate = adapt(adapted[task.name][applies], references[task.name])
        adapted[task.name] = adapted[task.name].copy()
        adapted[task.name][applies] = new
        estimates[task.name] = dict(zip(task.label_names, np.round(estimate, 6).tolist(), strict=True))
        if task.name in thresholds:
            thresholds[task.name] = adapted_threshold(thresholds[task.name], references[task.name], estimate,
                                                      task.positive_index)
    return adapted, estimates, thresholds
