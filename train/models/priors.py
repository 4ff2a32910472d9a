"""Label priors: what a model outputs on articles like its training data, and its adaptation to a batch of new ones.

A new outlet files its articles under the labels in other proportions than the training data did (CNN's middleEast
half, against a fifth in training). `adapt` re-estimates the labels' proportions in a batch from the model's own
probabilities, without a label, and re-weighs each article's probabilities by the ratio of the new proportion to the
reference one: the EM of Saerens, Latinne and Decaestecker (2002), "Adjusting the outputs of a classifier to new a
priori probabilities". EM trusts the probabilities: an underconfident model (few labels, flat probabilities) would
drift to one label. So the probabilities are first calibrated on the validation split by a temperature and a bias per
label (bias-corrected temperature scaling, which Alexandari, Kundaje and Shrikumar (2020) found the best companion of
EM; the biases have a standard normal prior, so that a small validation split keeps them near 0), and the reference
proportions are the calibrated model's mean output on the validation split.
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
    """{task: {"prior", "temperature", "bias", "from"}}: saved with the model, read by `adapt`.

    With validation articles labelled for the task, the calibration is fit on them and the prior is the calibrated
    model's mean probability over them; without, nothing is calibrated and the prior is each label's share of the
    training rows labelled for the task, the rows' sample weights counted.
    """
    priors = {}
    for task in tasks:
        held = np.asarray(validation_labels[task.name]) if validation_labels else np.zeros(0, dtype=int)
        if (held >= 0).any() and validation_proba is not None:
            proba = validation_proba[task.name][held >= 0]
            scale, bias = calibration(proba, held[held >= 0])
            reference = {"temperature": round(scale, 6), "bias": np.round(bias, 6).tolist()}
            priors[task.name] = {"prior": calibrate(proba, reference).mean(axis=0).round(6).tolist(), **reference,
                                 "from": "validation"}
            continue
        y = np.asarray(labels[task.name])
        known = y >= 0
        if not known.any():
            continue
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        counts = np.bincount(y[known], weights=w[known], minlength=len(task.labels))
        priors[task.name] = {"prior": (counts / counts.sum()).round(6).tolist(), "temperature": 1.0,
                             "bias": [0.0] * len(task.labels), "from": "training labels"}
    return priors


def calibration(proba: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The temperature T and biases b minimising the log-loss of softmax(log(proba) / T + b) on labels `y`, with a
    standard normal prior on each bias (T between 1/50 and 50)."""
    from scipy.optimize import minimize

    rows, n, k = np.arange(len(y)), len(y), proba.shape[1]
    log_p = np.log(np.clip(proba, FLOOR, 1))

    def loss(x: np.ndarray) -> float:
        z = log_p / np.exp(x[0]) + x[1:]
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, y] - np.log(np.exp(z).sum(axis=1))).mean() + 0.5 * (x[1:] ** 2).sum() / n)

    bound = np.log(50)
    x = minimize(loss, np.zeros(k + 1), method="L-BFGS-B", bounds=[(-bound, bound)] + [(None, None)] * k).x
    return float(np.exp(x[0])), x[1:]


def calibrate(proba: np.ndarray, reference: dict) -> np.ndarray:
    """softmax(log(proba) / temperature + bias) with the reference's calibration; zeros stay zero."""
    scale, bias = reference["temperature"], np.asarray(reference.get("bias") or np.zeros(proba.shape[1]))
    if scale == 1.0 and not bias.any():
        return proba
    z = np.where(proba > 0, np.log(np.clip(proba, FLOOR, 1)) / scale + bias, -np.inf)
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
    proba = calibrate(proba, reference)
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
    """A binary task's decision threshold moved with its probabilities. An article at the threshold t before
    adaptation has, after it, the odds (t / (1 - t)) ** (1 / T) * exp(b[positive] - b[negative]) (calibration), times
    the ratio of the estimated to the reference odds of the positive label (re-weighing): the new threshold's odds."""
    prior = np.asarray(reference["prior"], dtype=float)
    bias = np.asarray(reference.get("bias") or np.zeros(len(prior)))
    negative = 1 - positive
    if min(prior[positive], prior[negative], estimate[positive], estimate[negative]) <= 0:
        return threshold  # a label never seen, or estimated absent: the odds have no ratio
    threshold = min(max(threshold, 1e-9), 1 - 1e-9)
    shift = (estimate[positive] / prior[positive]) / (estimate[negative] / prior[negative])
    odds = (threshold / (1 - threshold)) ** (1 / reference["temperature"]) * np.exp(bias[positive] - bias[negative])
    return float(odds * shift / (1 + odds * shift))


def adapt_tasks(tasks: Sequence[Task], proba: dict[str, np.ndarray], references: dict[str, dict],
                thresholds: dict[str, float]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]],
                                                       dict[str, float]]:
    """Every task's probabilities adapted (`adapt`) to a batch; the label proportions estimated per task; the decision
    thresholds moved with the probabilities. `tasks` in schema order: a task with `applies_when` is adapted on the
    articles it applies to, once the task it depends on is."""
    from train.models.predictor import predicted_labels

    adapted, estimates, thresholds = dict(proba), {}, dict(thresholds)
    for task in tasks:
        if task.name not in references:
            continue
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
